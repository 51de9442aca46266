"""A message given as bytes: a ready message (`send --message`) or sendmail's input.

Such a message is sent as is: its header fields are not rewritten. The only changes
are CRLF line ends (SMTP requires them), removal of the blind-copy fields Bcc and
Resent-Bcc (never transmitted, as Postfix's cleanup removes them), a blank line where
the header section ends at a line that is no field, and Date/Message-ID added on top
when missing.

The header section is read with one grammar for every purpose, so that a field taken
for a recipient field is also the one removed, and the reverse: a field is a name of
printable ASCII other than the colon, optional spaces or tabs (RFC 5322's obsolete
`Name :`), a colon, the value; a line starting with a space or tab continues it; names
compare in any case. This is what receivers (Postfix's is_header) accept. The section
ends at a blank line, or at the first line that is neither a field nor a continuation:
that line starts the body.

A ready message must start with a header field (else 65). Sendmail input follows
Postfix's sendmail: leading mbox `From ` lines (and `>From `) are dropped, and input
whose first line is no header field is all body (mailcli then adds From, Date and
Message-ID; like Postfix, no To).

Recipients named by the header (`header_recipients`, sendmail -t and `send --message`
without `--rcpt`): Resent-To, Resent-Cc and Resent-Bcc when the message has any of
them (a resent message goes to its new recipients), else To, Cc and Bcc. This is the
rule of Postfix's sendmail -t. A group in them (`To: undisclosed-recipients:;`, `To:
team: a@example.org;`) names its members; an empty one names nobody and stays in the
header as given.

International domains: the envelope goes as A-labels (`envelope.prepared`) unless a
local part needs SMTPUTF8, but the header fields are the caller's bytes and are not
rewritten (msmtp and Postfix's sendmail leave them too): a non-ASCII domain in them
reaches the server as UTF-8, as it was given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from mailcli.errors import DataError
from mailcli.smtp.envelope import (
    BLIND_FIELDS,
    Envelope,
    Outgoing,
    date_now,
    new_message_id,
    parse_envelope_address,
    prepared,
    split_commas,
)

_LINE_END = re.compile(rb"\r\n|\r|\n")
# field-name *WSP ":" (RFC 5322 3.6.8 and 4.5.8); the name is group 1.
_FIELD_START = re.compile(rb"([!-9;-~]+)[ \t]*:")
_MBOX_FROM_LINE = re.compile(rb">*From ")
_CRLF = b"\r\n"

RECIPIENT_FIELDS = ("to", "cc", "bcc")
RESENT_RECIPIENT_FIELDS = ("resent-to", "resent-cc", "resent-bcc")


def normalise_line_endings(data: bytes) -> bytes:
    """Any mix of LF, CR and CRLF -> CRLF, as SMTP requires; a final line end added."""
    data = _LINE_END.sub(_CRLF, data)
    return data if data.endswith(_CRLF) or not data else data + _CRLF


class HeaderField(NamedTuple):
    """One header field as given, and what it says."""

    name: str  # lower case, without the white space before the colon
    lines: bytes  # the field's lines as given, CRLF between them, no final CRLF
    value: str  # unfolded, decoded (UTF-8, undecodable bytes replaced)


class RawMessage(NamedTuple):
    """A message as bytes, split at the end of its header section."""

    fields: tuple[HeaderField, ...]
    body: bytes | None  # after the blank line; None when the input ends with the header

    @classmethod
    def parse(cls, raw: bytes) -> RawMessage:
        """A ready message: normalise line ends, read the header section; 65 without."""
        message = cls._split(normalise_line_endings(raw))
        if not message.fields:
            raise DataError("the message does not start with a header field (Name: value)")
        return message

    @classmethod
    def parse_submission(cls, raw: bytes) -> RawMessage:
        """Sendmail input: leading mbox `From ` lines dropped; no header field: all body."""
        data = normalise_line_endings(raw)
        start = 0
        while _MBOX_FROM_LINE.match(data, start):
            start = data.index(_CRLF, start) + len(_CRLF)
        return cls._split(data[start:])

    @classmethod
    def _split(cls, data: bytes) -> RawMessage:
        fields: list[HeaderField] = []
        field_start = position = 0
        name: str | None = None
        while position < len(data):
            line_end = data.index(_CRLF, position)
            continues = name is not None and data[position : position + 1] in (b" ", b"\t")
            if not continues:
                if name is not None:
                    fields.append(_field(name, data[field_start : position - len(_CRLF)]))
                match = _FIELD_START.match(data, position, line_end)
                if match is None:
                    name = None
                    break
                name, field_start = match.group(1).decode("ascii").lower(), position
            position = line_end + len(_CRLF)
        if name is not None:  # the input ended inside the header section
            fields.append(_field(name, data[field_start : position - len(_CRLF)]))
            return cls(tuple(fields), None)
        if data.startswith(_CRLF, position):  # the blank line that ends the section
            position += len(_CRLF)
        return cls(tuple(fields), data[position:])

    def has(self, name: str) -> bool:
        return any(field.name == name for field in self.fields)

    def addresses(self, *names: str) -> list[tuple[str, str]]:
        """(display name, address) pairs of the named fields, in order."""
        from email.utils import getaddresses

        values = [field.value for field in self.fields if field.name in names]
        return [(display, addr) for display, addr in getaddresses(values) if addr]

    def header_recipients(self) -> list[str]:
        """The addresses the header sends the message to (sendmail -t's rule)."""
        resent = any(self.has(name) for name in RESENT_RECIPIENT_FIELDS)
        names = RESENT_RECIPIENT_FIELDS if resent else RECIPIENT_FIELDS
        return [addr for _, addr in self.addresses(*names)]

    def transmitted(self, *, sender: str, added_fields: bytes = b"") -> bytes:
        """The bytes to send: Bcc and Resent-Bcc removed; missing Date/Message-ID (and
        `added_fields`) on top; everything else exactly as given."""
        on_top = added_fields
        if not self.has("date"):
            on_top += f"Date: {date_now()}\r\n".encode()
        if not self.has("message-id"):
            on_top += f"Message-ID: {new_message_id(sender)}\r\n".encode()
        kept = b"".join(f.lines + _CRLF for f in self.fields if f.name not in BLIND_FIELDS)
        return on_top + kept + (b"" if self.body is None else _CRLF + self.body)


def _field(name: str, lines: bytes) -> HeaderField:
    value = lines.partition(b":")[2].replace(_CRLF, b"")  # unfolding (RFC 5322 2.2.3)
    return HeaderField(name, lines, value.decode("utf-8", "replace"))


def prepare_message(raw: bytes, *, envelope_from: str | None, rcpt: Sequence[str]) -> Outgoing:
    """`send --message`: envelope from the options, else from From and the recipient
    fields (`RawMessage.header_recipients`)."""
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
        recipients = message.header_recipients()
    if not recipients:
        raise DataError("no recipients", hint="the message has no To/Cc/Bcc: give --rcpt")
    envelope = Envelope(sender, tuple(dict.fromkeys(recipients)))
    return prepared(envelope, message.transmitted(sender=sender))
