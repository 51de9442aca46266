"""The phases of a POP3 session, in order: where `--quit-after` may end it with QUIT.

A module of its own so that the POP3 commands' options (and their `--help`) name the
phases without importing the session and, with it, poplib and ssl.
"""

from __future__ import annotations

PHASES = ("connect", "capa", "tls", "auth")
