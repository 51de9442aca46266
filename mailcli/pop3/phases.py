"""The phases of a POP3 session, in order: where `--quit-after` may end it with QUIT.

A module of its own so that the POP3 commands' options (and their `--help`) name the
phases without importing the session and, with it, poplib and ssl.
"""

from __future__ import annotations

from typing import Literal, get_args

Pop3Phase = Literal["connect", "capa", "tls", "auth"]
PHASES: tuple[Pop3Phase, ...] = get_args(Pop3Phase)


def pop3_phase(name: str | None) -> Pop3Phase | None:
    """`name` as a phase, or None when it names none (`--quit-after` offers only PHASES)."""
    return next((phase for phase in PHASES if phase == name), None)
