"""What one SMTP transaction did: each recipient accepted or refused, and the reply to
the message (`SendResult`). A leaf shared by the lock-step transaction (`smtp.session`)
and the pipelined one (`smtp.pipeline`); its exit status is the run's own (0, 67, 75)."""

from __future__ import annotations

from typing import Any

from mailcli.errors import ExitStatus
from mailcli.smtp.reply import ACCEPTED_RECIPIENT, Reply


class SendResult:
    """Per recipient accepted or refused, and the final reply to DATA (None: not sent).
    Filled in as the transaction goes; a plain class, not a dataclass, whose build at
    import costs ~1 ms (start-up)."""

    def __init__(self, envelope_from: str) -> None:
        self.envelope_from = envelope_from
        self.accepted: list[str] = []
        self.refused: dict[str, Reply] = {}
        self.reply: Reply | None = None
        self.replies: dict[str, Reply] = {}  # every RCPT's reply, accepted too (the log's)
        # RFC 3461 notifications: None (none asked for), "requested" (sent with MAIL and
        # RCPT), "not offered" (the server has no DSN: the message went without them).
        self.dsn: str | None = None

    def __repr__(self) -> str:
        return (
            f"SendResult(envelope_from={self.envelope_from!r}, accepted={self.accepted!r}, "
            f"refused={self.refused!r}, reply={self.reply!r})"
        )

    @property
    def exit_status(self) -> ExitStatus:
        if any(reply.temporary for reply in self.refused.values()):
            return ExitStatus.TEMPFAIL
        return ExitStatus.NOUSER if self.refused else ExitStatus.OK

    def as_json(self) -> dict[str, Any]:
        refused = {a: {"code": r.code, "message": r.message} for a, r in self.refused.items()}
        return {
            "envelope_from": self.envelope_from,
            "accepted": self.accepted,
            "refused": refused,
            "reply": str(self.reply) if self.reply else None,
            "dsn": self.dsn,
        }

    def record(self, recipient: str, reply: Reply) -> None:
        """One RCPT's reply: accepted (250, 251) or refused with the reply."""
        self.replies[recipient] = reply
        if reply.code in ACCEPTED_RECIPIENT:
            self.accepted.append(recipient)
        else:
            self.refused[recipient] = reply
