"""Options -> the exact bytes to transmit plus the SMTP envelope, validated.

As in the SMTP post: MAIL FROM and RCPT TO decide delivery; From/To/Cc are content.
`--envelope-from` sets MAIL FROM (default: the bare address of From); `--rcpt` replaces
the envelope recipients (default To + Cc + Bcc). Bcc never reaches the transmitted
headers (`--header 'Bcc: ...'` is refused, 64: use --bcc). Everything given on the
command line is checked before any connection: a CR, LF or NUL in a header value or
address is header injection (65), an unparsable address is 65, a missing file 66.

Messages are built with the email package's modern API (`EmailMessage`, policy SMTP:
CRLF line ends, RFC 2047 for non-ASCII display names and subjects). An address whose
mailbox itself is not ASCII needs SMTPUTF8; such messages are generated with the
SMTPUTF8 policy and flagged, and the transport refuses them when the server cannot.
Otherwise a non-ASCII domain is written as its A-label in the From, To, Cc and
Reply-To fields as in the envelope (`envelope.prepared`), so the message is ASCII.

`--to`, `--cc`, `--bcc` and `--reply-to` take RFC 5322 groups; a group stays a group in
its field (`To: undisclosed-recipients:;`), its members are recipients, and Bcc, groups
included, is never transmitted. Only empty groups and no `--rcpt`: "no recipients" (65).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from mailcli.errors import DataError, NoInputError, UsageError
from mailcli.smtp.envelope import (
    BLIND_FIELDS,
    AddressGroup,
    Attachment,
    Envelope,
    Outgoing,
    check_no_injection,
    date_now,
    group_members,
    needs_smtputf8,
    new_message_id,
    parse_address_list,
    parse_addresses,
    parse_envelope_address,
    prepared,
    split_commas,
)
from mailcli.smtp.idn import address_to_ascii

if TYPE_CHECKING:
    from email.headerregistry import Address, Group
    from email.message import EmailMessage
    from pathlib import Path


# printable ASCII except ':' (RFC 5322 2.2); compiled on first use (re caches it)
_FIELD_NAME = r"[!-9;-~]+"

# Headers that may appear once; a --header naming one replaces it instead of adding.
_UNIQUE_HEADERS = {"from", "to", "cc", "subject", "date", "message-id", "reply-to", "sender"}


class ComposeRequest(NamedTuple):
    """The `send` options that shape the message; None/empty means not given. A NamedTuple,
    not a frozen dataclass: no dataclass built at import (start-up)."""

    from_addr: str | None = None
    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str | None = None
    body: str | None = None
    html: Path | None = None
    attachments: Sequence[Path] = ()
    headers: Sequence[str] = ()
    reply_to: str | None = None
    envelope_from: str | None = None
    rcpt: Sequence[str] = ()
    message_id_domain: str | None = None


class ComposeOptions(NamedTuple):
    """`send`'s options that shape a composed message, as given on the command line
    (None or empty: not given), built once by the CLI. A ready message (`--message`)
    takes none of them; `request` turns them into a `ComposeRequest`."""

    from_addr: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str | None = None
    body: str | None = None
    body_file: str | None = None  # str, not Path: pathlib only when a file is given
    html: str | None = None
    attach: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    reply_to: str | None = None

    def given(self) -> list[str]:
        """The options that were given, as their flags (`--from`, `--body-file`)."""
        return [
            "--" + name.replace("_addr", "").replace("_", "-")
            for name, value in zip(self._fields, self, strict=True)
            if value
        ]

    def request(
        self,
        *,
        body: str | None,
        account_from: str | None,
        account_domain: str | None,
        envelope_from: str | None,
        rcpt: Sequence[str],
    ) -> ComposeRequest:
        """With the body text (from --body, --body-file or stdin), the account's From
        and domain as defaults, and the envelope options."""
        return ComposeRequest(
            from_addr=self.from_addr or account_from,
            to=self.to,
            cc=self.cc,
            bcc=self.bcc,
            subject=self.subject,
            body=body,
            html=_path(self.html) if self.html is not None else None,
            attachments=tuple(_path(name) for name in self.attach),
            headers=self.header,
            reply_to=self.reply_to,
            envelope_from=envelope_from,
            rcpt=rcpt,
            message_id_domain=account_domain,
        )


def _path(name: str) -> Path:
    from pathlib import Path  # only when a file is named (start-up)

    return Path(name)


def parse_header_option(value: str) -> tuple[str, str]:
    """`--header 'Name: value'` -> (name, value); the name must be a valid field name."""
    check_no_injection("--header", value)
    name, colon, content = value.partition(":")
    name = name.strip()
    if not colon or not re.fullmatch(_FIELD_NAME, name):
        raise DataError(f"--header {value!r}: expected 'Name: value'")
    if name.lower() in BLIND_FIELDS:  # a header field would show it to every recipient
        raise UsageError(f"--header {name}: blind copies are given with --bcc")
    return name, content.strip()


def compose(request: ComposeRequest) -> Outgoing:
    """Build the message and envelope from options (not `--message`)."""
    if not request.from_addr:
        raise DataError("no From address", hint="give --from or set `from` in the account")
    if request.message_id_domain is not None:  # the account's `domain`, into Message-ID
        check_no_injection("the account's domain", request.message_id_domain)
    senders = parse_addresses("--from", [request.from_addr])
    if len(senders) != 1:
        raise DataError("--from must be exactly one address")
    sender = AddressGroup(None, tuple(senders))
    to = parse_address_list("--to", request.to)
    cc = parse_address_list("--cc", request.cc)
    bcc = parse_address_list("--bcc", request.bcc)
    reply_to = parse_address_list("--reply-to", [request.reply_to]) if request.reply_to else []
    envelope = _envelope(request, senders[0][1], group_members(to + cc + bcc))
    header_addresses = group_members([sender, *to, *cc, *reply_to])
    utf8 = needs_smtputf8([envelope.sender, *envelope.recipients, *header_addresses])
    fields = {"From": [sender], "To": to, "Cc": cc, "Reply-To": reply_to}
    message, attachments = _build_message(request, fields, ascii_domains=not utf8)
    data = _serialise(message, utf8=utf8)
    return prepared(
        envelope, data, header_addresses=header_addresses, attachments=tuple(attachments)
    )


def _envelope(request: ComposeRequest, from_addr: str, header_rcpts: list[str]) -> Envelope:
    sender = from_addr
    if request.envelope_from is not None:
        sender = parse_envelope_address("--envelope-from", request.envelope_from)
    recipients = header_rcpts
    if request.rcpt:
        recipients = [parse_envelope_address("--rcpt", r) for r in split_commas(request.rcpt)]
    recipients = list(dict.fromkeys(recipients))  # each mailbox once, in order
    if not recipients:
        raise DataError("no recipients", hint="give --to, --cc, --bcc or --rcpt")
    return Envelope(sender, tuple(recipients))


def _build_message(
    request: ComposeRequest, fields: dict[str, list[AddressGroup]], *, ascii_domains: bool
) -> tuple[EmailMessage, list[Attachment]]:
    """`fields`: the address fields in order, From first; `ascii_domains`: their domains
    as A-labels (the message goes without SMTPUTF8)."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    for name, entries in fields.items():
        if entries:
            message[name] = _format_addresses(entries, ascii_domains=ascii_domains)
    if request.subject is not None:
        check_no_injection("--subject", request.subject)
        message["Subject"] = request.subject
    sender = fields["From"][0].mailboxes[0][1]
    _add_date_and_message_id(message, request.message_id_domain or sender)
    for name, value in (parse_header_option(h) for h in request.headers):
        if name.lower() in _UNIQUE_HEADERS:
            del message[name]
        message[name] = value
    return message, _set_body(message, request)


def _format_addresses(entries: list[AddressGroup], *, ascii_domains: bool) -> list[Address | Group]:
    # Built from username and domain, not addr_spec: parsing an addr_spec refuses a
    # non-ASCII local part, which SMTPUTF8 allows. Names get quoted or encoded on output.
    from email.headerregistry import Address, Group

    def address(name: str, addr: str) -> Address:
        username, _, domain = (address_to_ascii(addr) if ascii_domains else addr).rpartition("@")
        return Address(display_name=name, username=username, domain=domain)

    formatted: list[Address | Group] = []
    for entry in entries:
        mailboxes = [address(name, addr) for name, addr in entry.mailboxes]
        formatted += mailboxes if entry.name is None else [Group(entry.name, mailboxes)]
    return formatted


def _add_date_and_message_id(message: EmailMessage, sender: str) -> None:
    if "Date" not in message:
        message["Date"] = date_now()
    if "Message-ID" not in message:
        message["Message-ID"] = new_message_id(sender)


def _set_body(message: EmailMessage, request: ComposeRequest) -> list[Attachment]:
    text = request.body if request.body is not None else ""
    # Quoted-printable keeps non-ASCII text 7-bit clean for servers without 8BITMIME.
    message.set_content(text, cte=None if text.isascii() else "quoted-printable")
    if request.html is not None:
        html = read_input_file(request.html, "--html").decode("utf-8", "replace")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return [_attach(message, path) for path in request.attachments]


def _attach(message: EmailMessage, path: Path) -> Attachment:
    """A base64 part whose body is a marker line; the file is encoded while it is sent
    (base64 always: the attachment arrives byte for byte, text files included)."""
    import mimetypes
    import secrets

    size = _readable_size(path)
    content_type, encoding = mimetypes.guess_type(path.name)
    if content_type is None or encoding is not None:
        content_type = "application/octet-stream"  # e.g. .tar.gz: send it as the bytes it is
    maintype, _, subtype = content_type.partition("/")
    message.add_attachment(b"", maintype=maintype, subtype=subtype, filename=path.name)
    marker = f"MAILCLI-ATTACHMENT-{secrets.token_hex(16)}"
    part: Any = message.get_payload()[-1]  # type: ignore[index]
    part.set_payload(marker + "\n")
    return Attachment(marker.encode() + b"\r\n", path, size)


def _readable_size(path: Path) -> int:
    """Fail now (66) rather than in the middle of DATA."""
    with _input_errors(path, "--attach"), open(path, "rb") as handle:
        return os.fstat(handle.fileno()).st_size


def read_input_file(path: Path, what: str) -> bytes:
    with _input_errors(path, what):
        return path.read_bytes()


@contextmanager
def _input_errors(path: Path, what: str) -> Iterator[None]:
    """A file named on the command line that cannot be read: 66 (a folder: 64)."""
    try:
        yield
    except FileNotFoundError:
        raise NoInputError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory") from None
    except OSError as exc:
        raise NoInputError(f"{what} {path}: cannot read: {exc.strerror}") from exc


def _serialise(message: EmailMessage, *, utf8: bool) -> bytes:
    from email.policy import SMTP, SMTPUTF8

    return message.as_bytes(policy=SMTPUTF8 if utf8 else SMTP)
