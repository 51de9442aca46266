"""A ready RFC 5322 message given as bytes (`send --message`, sendmail mode).

Such a message is sent as is: its header fields are not rewritten. The only changes
are CRLF line ends (SMTP requires them), removal of Bcc fields (never transmitted), and
Date/Message-ID added on top when missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailcli.errors import DataError
from mailcli.smtp.envelope import (
    Envelope,
    Outgoing,
    date_now,
    needs_smtputf8,
    new_message_id,
    parse_envelope_address,
    split_commas,
)

_LINE_END = re.compile(rb"\r\n|\r|\n")
_FIELD_LINE = re.compile(rb"[!-9;-~]+:.*", re.DOTALL)  # a field name, a colon (RFC 5322)


def normalise_line_endings(data: bytes) -> bytes:
    """Any mix of LF, CR and CRLF -> CRLF, as SMTP requires; a final line end added."""
    data = _LINE_END.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") or not data else data + b"\r\n"


@dataclass(frozen=True)
class RawMessage:
    """A message as bytes, split at the end of its header section, fields decoded."""

    head: bytes  # the header lines, CRLF-separated, without the blank line
    rest: bytes  # b"\r\n\r\n" + body, or b"" when there is no body
    fields: tuple[tuple[str, str], ...]  # (lower-case name, decoded value), in order

    @classmethod
    def parse(cls, raw: bytes) -> RawMessage:
        """Normalise line ends and read the header section; 65 when there is none."""
        from email.parser import BytesParser
        from email.policy import SMTP

        data = normalise_line_endings(raw)
        head, separator, body = data.partition(b"\r\n\r\n")
        if not _FIELD_LINE.fullmatch(head.split(b"\r\n", 1)[0]):
            raise DataError("the message does not start with a header field (Name: value)")
        parsed = BytesParser(policy=SMTP).parsebytes(head + b"\r\n\r\n", headersonly=True)
        fields = tuple((name.lower(), str(value)) for name, value in parsed.items())
        return cls(head, separator + body, fields)

    def has(self, name: str) -> bool:
        return any(field == name for field, _ in self.fields)

    def addresses(self, *names: str) -> list[tuple[str, str]]:
        """(display name, address) pairs of the named fields, in order."""
        from email.utils import getaddresses

        values = [value for name, value in self.fields if name in names]
        return [(display, addr) for display, addr in getaddresses(values) if addr]

    def transmitted(self, *, sender: str, added_fields: bytes = b"") -> bytes:
        """The bytes to send: Bcc removed; missing Date/Message-ID (and `added_fields`)
        on top; everything else exactly as given."""
        on_top = added_fields
        if not self.has("date"):
            on_top += f"Date: {date_now()}\r\n".encode()
        if not self.has("message-id"):
            on_top += f"Message-ID: {new_message_id(sender)}\r\n".encode()
        return on_top + _strip_fields(self.head, {"bcc"}) + self.rest


def prepare_message(raw: bytes, *, envelope_from: str | None, rcpt: Sequence[str]) -> Outgoing:
    """`send --message`: envelope from the options, else from From and To/Cc/Bcc."""
    message = RawMessage.parse(raw)
    if envelope_from is not None:
        sender = parse_envelope_address("--envelope-from", envelope_from)
    else:
        senders = message.addresses("from")
        if not senders:
            raise DataError("the message has no From address", hint="give --envelope-from")
        sender = senders[0][1]
    if rcpt:
        recipients = [parse_envelope_address("--rcpt", r) for r in split_commas(rcpt)]
    else:
        recipients = [addr for _, addr in message.addresses("to", "cc", "bcc")]
    if not recipients:
        raise DataError("no recipients", hint="the message has no To/Cc/Bcc: give --rcpt")
    envelope = Envelope(sender, tuple(dict.fromkeys(recipients)))
    data = message.transmitted(sender=sender)
    return Outgoing(envelope, data, smtputf8=needs_smtputf8([sender, *recipients]))


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
