"""SMTP replies: the codes mailcli acts on (`ReplyCode`) and one reply (`Reply`).

A leaf of the smtp package (standard library only), so the wire, the session and the
sendmail front end share one spelling of "250" and of "a 4xx is temporary". A reply
keeps its code as the int the server sent: a code that is not a `ReplyCode` member
(say 599) is still a reply, and compares with members as an int (`code == COMPLETED`).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class ReplyCode(IntEnum):
    """The reply codes (RFC 5321 section 4.2.3) mailcli checks for by value."""

    READY = 220  # the greeting
    COMPLETED = 250
    WILL_FORWARD = 251  # RCPT: not local, will forward (accepted)
    START_INPUT = 354  # DATA: send the message
    CLOSING = 421  # service not available: the server closes the connection


ACCEPTED_RECIPIENT = (ReplyCode.COMPLETED, ReplyCode.WILL_FORWARD)


class Reply(NamedTuple):
    """One SMTP reply: the code and the text (lines joined by newlines)."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def enhanced_status(self) -> str | None:
        """The RFC 3463 enhanced status code the text starts with (`5.7.1`), or None."""
        first = self.message.split(None, 1)[0] if self.message.strip() else ""
        parts = first.split(".")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        return first if parts[0] in ("2", "4", "5") else None

    @property
    def text(self) -> str:
        """The text without its enhanced status code."""
        if self.enhanced_status is None:
            return self.message
        rest = self.message.split(None, 1)
        return rest[1] if len(rest) == 2 else ""
