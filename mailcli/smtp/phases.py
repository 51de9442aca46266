"""The phases of an SMTP session, in order: after each one the session tells its
`on_phase` callback, and `--quit-after` may end it there with QUIT.

A module of its own so that `send`'s options (and its `--help`) name the phases without
importing the session and, with it, smtplib and ssl.
"""

from __future__ import annotations

from typing import Literal, get_args

SmtpPhase = Literal["connect", "ehlo", "tls", "auth", "mail", "rcpt"]
PHASES: tuple[SmtpPhase, ...] = get_args(SmtpPhase)
# A stop after one of these ends a transaction already begun: the session returns what
# it knows of the recipients (no DATA sent) instead of raising StoppedEarly.
TRANSACTION_PHASES: tuple[SmtpPhase, ...] = ("mail", "rcpt")


def smtp_phase(name: str | None) -> SmtpPhase | None:
    """`name` as a phase, or None when it names none (`--quit-after` offers only PHASES)."""
    return next((phase for phase in PHASES if phase == name), None)
