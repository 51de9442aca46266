"""A ready RFC 5322 message given as bytes (`send --message`, sendmail mode).

Such a message is sent as is: its header fields are not rewritten. The only changes
are CRLF line ends (SMTP requires them), removal of Bcc fields (never transmitted), and
Date/Message-ID added on top when missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailcli.envelope import (
    Envelope,
    Outgoing,
    date_now,
    needs_smtputf8,
    new_message_id,
    parse_envelope_address,
    split_commas,
)
from mailcli.errors import DataError

_LINE_END = re.compile(rb"\r\n|\r|\n")


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
        recipients = [parse_envelope_address("--rcpt", r) for r in split_commas(rcpt)]
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
        added += f"Date: {date_now()}\r\n".encode()
    if "message-id" not in names:
        added += f"Message-ID: {new_message_id(sender)}\r\n".encode()
    return added
