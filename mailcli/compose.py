"""Options -> the exact bytes to transmit plus the SMTP envelope, validated.

As in the SMTP post: MAIL FROM and RCPT TO decide delivery; From/To/Cc are content.
`--envelope-from` sets MAIL FROM (default: the bare address of From); `--rcpt` replaces
the envelope recipients (default To + Cc + Bcc). Bcc never reaches the transmitted
headers. Everything given on the command line is checked before any connection: a CR,
LF or NUL in a header value or address is header injection (65), an unparsable address
is 65, a missing file 66.

Messages are built with the email package's modern API (`EmailMessage`, policy SMTP:
CRLF line ends, RFC 2047 for non-ASCII display names and subjects). An address whose
mailbox itself is not ASCII needs SMTPUTF8; such messages are generated with the
SMTPUTF8 policy and flagged, and the transport refuses them when the server cannot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mailcli.errors import DataError, NoInputError, UsageError

if TYPE_CHECKING:
    from email.headerregistry import Address
    from email.message import EmailMessage

# addr-spec, loosely: something@something, no white space or specials. Quoted local
# parts are rare enough on a command line that refusing them beats misparsing them.
_ADDR_SPEC = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 2.2)
_LINE_END = re.compile(rb"\r\n|\r|\n")
# Headers that may appear once; a --header naming one replaces it instead of adding.
_UNIQUE_HEADERS = {"from", "to", "cc", "subject", "date", "message-id", "reply-to", "sender"}


@dataclass(frozen=True)
class Envelope:
    """MAIL FROM and RCPT TO. An empty sender is the null sender `<>`."""

    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Outgoing:
    """What the transport submits: the envelope and the message bytes, CRLF, unstuffed."""

    envelope: Envelope
    data: bytes = field(repr=False)
    smtputf8: bool = False


@dataclass(frozen=True)
class ComposeRequest:
    """The `send` options that shape the message; None/empty means not given."""

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


def check_no_injection(what: str, value: str) -> None:
    """A CR, LF or NUL in a command-line value would smuggle in headers or commands."""
    if any(char in value for char in "\r\n\0"):
        raise DataError(f"{what} contains a line break or NUL: refused (header injection)")


def parse_addresses(what: str, values: Iterable[str]) -> list[tuple[str, str]]:
    """Repeatable, comma-separated address options -> [(display name, addr-spec)]."""
    from email.utils import getaddresses

    found: list[tuple[str, str]] = []
    for value in values:
        check_no_injection(what, value)
        pairs = getaddresses([value])
        if not value.strip() or any(not _ADDR_SPEC.fullmatch(addr) for _, addr in pairs):
            raise DataError(f"{what}: cannot parse {value!r} as a list of addresses")
        found.extend(pairs)
    return found


def parse_envelope_address(what: str, value: str) -> str:
    """A bare address for MAIL FROM/RCPT TO; `<>` or empty is the null sender."""
    check_no_injection(what, value)
    bare = value.strip()
    if bare in ("", "<>"):
        return ""
    bare = bare.removeprefix("<").removesuffix(">")
    if not _ADDR_SPEC.fullmatch(bare):
        raise DataError(f"{what}: {value!r} is not a bare address such as user@example.org")
    return bare


def parse_header_option(value: str) -> tuple[str, str]:
    """`--header 'Name: value'` -> (name, value); the name must be a valid field name."""
    check_no_injection("--header", value)
    name, colon, content = value.partition(":")
    name = name.strip()
    if not colon or not _FIELD_NAME.fullmatch(name):
        raise DataError(f"--header {value!r}: expected 'Name: value'")
    return name, content.strip()


def needs_smtputf8(addresses: Iterable[str]) -> bool:
    return any(not address.isascii() for address in addresses)


def compose(request: ComposeRequest) -> Outgoing:
    """Build the message and envelope from options (not `--message`)."""
    if not request.from_addr:
        raise DataError("no From address", hint="give --from or set `from` in the account")
    senders = parse_addresses("--from", [request.from_addr])
    if len(senders) != 1:
        raise DataError("--from must be exactly one address")
    to = parse_addresses("--to", request.to)
    cc = parse_addresses("--cc", request.cc)
    bcc = parse_addresses("--bcc", request.bcc)
    reply_to = parse_addresses("--reply-to", [request.reply_to]) if request.reply_to else []
    envelope = _envelope(request, senders[0][1], [a for _, a in to + cc + bcc])
    message = _build_message(request, senders, to, cc, reply_to)
    header_addresses = [a for _, a in senders + to + cc + reply_to]
    utf8 = needs_smtputf8([envelope.sender, *envelope.recipients, *header_addresses])
    return Outgoing(envelope, _serialise(message, utf8=utf8), smtputf8=utf8)


def _envelope(request: ComposeRequest, from_addr: str, header_rcpts: list[str]) -> Envelope:
    sender = from_addr
    if request.envelope_from is not None:
        sender = parse_envelope_address("--envelope-from", request.envelope_from)
    recipients = header_rcpts
    if request.rcpt:
        recipients = [parse_envelope_address("--rcpt", r) for r in _split_commas(request.rcpt)]
    recipients = list(dict.fromkeys(recipients))  # each mailbox once, in order
    if not recipients:
        raise DataError("no recipients", hint="give --to, --cc, --bcc or --rcpt")
    return Envelope(sender, tuple(recipients))


def _split_commas(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def _build_message(
    request: ComposeRequest,
    senders: list[tuple[str, str]],
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    reply_to: list[tuple[str, str]],
) -> EmailMessage:
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    for name, pairs in (("From", senders), ("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        if pairs:
            message[name] = _format_addresses(pairs)
    if request.subject is not None:
        check_no_injection("--subject", request.subject)
        message["Subject"] = request.subject
    _add_date_and_message_id(message, request.message_id_domain or senders[0][1])
    for name, value in (parse_header_option(h) for h in request.headers):
        if name.lower() in _UNIQUE_HEADERS:
            del message[name]
        message[name] = value
    _set_body(message, request)
    return message


def _format_addresses(pairs: list[tuple[str, str]]) -> list[Address]:
    # Built from username and domain, not addr_spec: parsing an addr_spec refuses a
    # non-ASCII local part, which SMTPUTF8 allows. Names get quoted or encoded on output.
    from email.headerregistry import Address

    return [
        Address(display_name=name, username=addr.rpartition("@")[0], domain=addr.rpartition("@")[2])
        for name, addr in pairs
    ]


def _add_date_and_message_id(message: EmailMessage, sender: str) -> None:
    if "Date" not in message:
        message["Date"] = _date_now()
    if "Message-ID" not in message:
        message["Message-ID"] = _new_message_id(sender)


def _date_now() -> str:
    from email.utils import format_datetime, localtime

    return format_datetime(localtime())


def _new_message_id(sender: str) -> str:
    """<unique@domain-of-the-sender>, the domain in its ASCII (IDNA) form."""
    from email.utils import make_msgid

    domain = sender.rpartition("@")[2] or "localhost"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: the ID only has to be unique, not routable
        domain = "localhost"
    return make_msgid(domain=domain)


def _set_body(message: EmailMessage, request: ComposeRequest) -> None:
    text = request.body if request.body is not None else ""
    # Quoted-printable keeps non-ASCII text 7-bit clean for servers without 8BITMIME.
    message.set_content(text, cte=None if text.isascii() else "quoted-printable")
    if request.html is not None:
        html = read_input_file(request.html, "--html").decode("utf-8", "replace")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    for path in request.attachments:
        _attach(message, path)


def _attach(message: EmailMessage, path: Path) -> None:
    import mimetypes

    data = read_input_file(path, "--attach")
    content_type, encoding = mimetypes.guess_type(path.name)
    if content_type is None or encoding is not None:
        content_type = "application/octet-stream"  # e.g. .tar.gz: send it as the bytes it is
    maintype, _, subtype = content_type.partition("/")
    # Bytes always go base64: the attachment arrives byte for byte, text files included.
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)


def read_input_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NoInputError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory") from None
    except OSError as exc:
        raise NoInputError(f"{what} {path}: cannot read: {exc.strerror}") from exc


def _serialise(message: EmailMessage, *, utf8: bool) -> bytes:
    from email.policy import SMTP, SMTPUTF8

    return message.as_bytes(policy=SMTPUTF8 if utf8 else SMTP)


def normalise_line_endings(data: bytes) -> bytes:
    """Any mix of LF, CR and CRLF -> CRLF, as SMTP requires; a final line end added."""
    data = _LINE_END.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") or not data else data + b"\r\n"


def prepare_message(raw: bytes, *, envelope_from: str | None, rcpt: Sequence[str]) -> Outgoing:
    """A ready RFC 5322 message (`--message`): sent as is, except that line ends become
    CRLF, Bcc fields are removed, and a missing Date or Message-ID is added on top."""
    data = normalise_line_endings(raw)
    head, separator, body = data.partition(b"\r\n\r\n")
    fields = _parse_header_section(head)
    sender = _message_sender(fields, envelope_from)
    if rcpt:
        recipients = [parse_envelope_address("--rcpt", r) for r in _split_commas(rcpt)]
    else:
        recipients = _message_recipients(fields)
    if not recipients:
        raise DataError("no recipients", hint="the message has no To/Cc/Bcc: give --rcpt")
    head = _strip_fields(head, {"bcc"})
    head = _missing_date_and_message_id(fields, sender) + head
    addresses = [sender, *recipients]
    envelope = Envelope(sender, tuple(dict.fromkeys(recipients)))
    return Outgoing(envelope, head + separator + body, smtputf8=needs_smtputf8(addresses))


def _parse_header_section(head: bytes) -> list[tuple[str, str]]:
    from email.parser import BytesParser
    from email.policy import SMTP

    first = head.split(b"\r\n", 1)[0]
    if not re.fullmatch(rb"[!-9;-~]+:.*", first, re.DOTALL):
        raise DataError("the message does not start with a header field (Name: value)")
    parsed = BytesParser(policy=SMTP).parsebytes(head + b"\r\n\r\n", headersonly=True)
    return [(name.lower(), str(value)) for name, value in parsed.items()]


def _message_sender(fields: list[tuple[str, str]], envelope_from: str | None) -> str:
    from email.utils import getaddresses

    if envelope_from is not None:
        return parse_envelope_address("--envelope-from", envelope_from)
    senders = [addr for _, addr in getaddresses([v for n, v in fields if n == "from"]) if addr]
    if not senders:
        raise DataError("the message has no From address", hint="give --envelope-from")
    return senders[0]


def _message_recipients(fields: list[tuple[str, str]]) -> list[str]:
    from email.utils import getaddresses

    values = [value for name, value in fields if name in ("to", "cc", "bcc")]
    return [addr for _, addr in getaddresses(values) if addr]


def _strip_fields(head: bytes, names: set[str]) -> bytes:
    """Remove whole header fields (with their folded continuation lines) by name."""
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            name = line.partition(b":")[0].strip().lower().decode("ascii", "replace")
            dropping = name in names
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept)


def _missing_date_and_message_id(fields: list[tuple[str, str]], sender: str) -> bytes:
    names = {name for name, _ in fields}
    added = b""
    if "date" not in names:
        added += f"Date: {_date_now()}\r\n".encode()
    if "message-id" not in names:
        added += f"Message-ID: {_new_message_id(sender)}\r\n".encode()
    return added
