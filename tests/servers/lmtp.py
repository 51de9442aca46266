"""LMTP servers for `fetch --to lmtp:`: the test Dovecot with its `lmtp` service (Debian
package dovecot-lmtpd), on a unix socket and on TCP 127.0.0.1, and a scripted LMTP
server whose replies a test chooses (4xx/5xx per recipient or per message, a hang-up
after the message's final dot).

`lmtp_dovecot(certs)` is one Dovecot serving POP3 and LMTP for the same users: a test
fetches one user's mail by POP3 and delivers it by LMTP into another user's Maildir.
Dovecot's LMTP adds Return-Path and Delivered-To (its Received line is turned off here);
`stored_message` removes those two from a delivered file, leaving what was sent.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import missing_reason, skip_unless_ready
from .certs import Certs
from .dovecot import Dovecot
from .dualstack import ScriptedServer6
from .ports import free_port, wait_for_greeting
from .scripted import Conn, ScriptedServer
from .slow import misbehave
from .stack import DEFAULT_USERS

LMTP_BINARY = Path("/usr/lib/dovecot/lmtp")
SILENT = "(silent)"  # a scripted reply never sent
DRIBBLE = "(dribble)"  # a scripted reply begun, then a byte at a time, never ended


def lmtp_settings(port: int) -> str:
    """Dovecot settings appended to the test config (a later setting wins)."""
    return f"""
protocols = pop3 lmtp
lmtp_add_received_header = no
service lmtp {{
  inet_listener lmtp {{
    port = {port}
  }}
}}
"""


def require_lmtp() -> None:
    """Skip (fail under CI=true) when Dovecot or its LMTP service is not installed."""
    reason = missing_reason("dovecot", need_root=True)
    if reason is None and not LMTP_BINARY.exists():
        reason = f"not installed: {LMTP_BINARY} (Debian package dovecot-lmtpd)"
    skip_unless_ready(reason)


class LmtpDovecot(Dovecot):
    """The test Dovecot with LMTP on `lmtp_socket` and on `lmtp_port` (127.0.0.1)."""

    def __init__(self, certs: Certs, users: dict[str, str] | None = None) -> None:
        self.lmtp_port = free_port()
        users = dict(DEFAULT_USERS if users is None else users)
        super().__init__(certs, users, extra_settings=lmtp_settings(self.lmtp_port))

    @property
    def lmtp_socket(self) -> Path:
        return self.root / "run" / "lmtp"

    def start(self) -> None:
        super().start()
        try:
            wait_for_greeting(self.lmtp_port, b"220", alive=self._alive)
        except Exception as error:
            self.stop()
            raise RuntimeError(f"Dovecot's LMTP did not start:\n{self._diagnostics()}") from error


def stored_message(data: bytes) -> bytes:
    """A message Dovecot's LMTP stored, without the Return-Path and Delivered-To lines it
    put on top."""
    for name in (b"Return-Path:", b"Delivered-To:"):
        if data.startswith(name):
            data = data.split(b"\n", 1)[1]
    return data


def maildir_messages(maildir: Path) -> list[bytes]:
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((maildir / sub).iterdir())]


# -- the scripted LMTP server ----------------------------------------------------------


@dataclass
class LmtpScript:
    """What the scripted server answers: `rcpt` to RCPT TO, then for the n-th message
    `finals[n]` after its final dot (the last one repeats); None there means hang up
    without a word after the dot. `refuse` answers a message holding one of its keys with
    that key's reply instead, however often it comes; `senders` answers a MAIL FROM line
    (the whole line) with its reply instead of 250 (then RCPT and DATA get 503).
    `stored` collects each message answered 250 (un-stuffed, as sent); `envelopes` each
    (MAIL FROM, RCPT TO) line pair."""

    greeting: str | None = "220 scripted LMTP ready"
    rcpt: str = "250 2.1.5 OK"
    finals: Sequence[str | None] = ("250 2.0.0 <x> Saved",)
    closing: str | None = None  # sent with each final reply, then the session ends
    stored: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, str]] = field(default_factory=list)
    messages: int = 0
    refuse: dict[bytes, str] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)

    def __call__(self, conn: Conn) -> None:
        if self.greeting is None:
            conn.file.read()  # silent until the client leaves
            return
        if self.greeting == DRIBBLE:
            return misbehave(conn, "dribble", b"220 ")
        conn.send(self.greeting)
        mail = rcpt = ""
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if verb == "LHLO":
                conn.send("250-scripted", "250-PIPELINING", "250 ENHANCEDSTATUSCODES")
            elif verb == "MAIL":
                mail = line if line not in self.senders else ""
                conn.send(self.senders.get(line, "250 2.1.0 OK"))
            elif verb == "RCPT":
                rcpt = line
                conn.send(self.rcpt if mail else "503 5.5.1 MAIL needed first")
            elif verb == "DATA" and not (mail and self.rcpt.startswith("250")):
                conn.send("503 5.5.1 No valid recipients")
            elif verb == "DATA":
                conn.send("354 OK")
                if not self._message(conn, mail, rcpt):
                    return
            elif verb == "QUIT":
                conn.send("221 2.0.0 Bye")
                return
            else:
                conn.send("250 2.0.0 OK")

    def _message(self, conn: Conn, mail: str, rcpt: str) -> bool:
        body = read_data(conn)
        final = self.finals[min(self.messages, len(self.finals) - 1)]
        final = next((reply for key, reply in self.refuse.items() if key in body), final)
        self.messages += 1
        if final is None:
            return False
        if final == SILENT:
            conn.file.read()
            return False
        if final == DRIBBLE:
            misbehave(conn, "dribble", b"250 ")
            return False
        if final.startswith("250"):
            self.stored.append(body)
            self.envelopes.append((mail, rcpt))
        if self.closing is None:
            conn.send(final)
            return True
        conn.send(*[final, self.closing][: 2 if self.closing else 1])  # in one write
        return False


def read_data(conn: Conn) -> bytes:
    """The DATA section up to its "." line, un-stuffed, CRLF kept."""
    lines = []
    while (line := conn.file.readline()) not in (b".\r\n", b""):
        lines.append(line[1:] if line.startswith(b"..") else line)
    return b"".join(lines)


def scripted_lmtp(script: LmtpScript, *, ipv6: bool = False) -> ScriptedServer:
    """The scripted server on 127.0.0.1, or on ::1 (`ipv6`)."""
    return (ScriptedServer6 if ipv6 else ScriptedServer)(script)


def nothing_listens(path: Path) -> None:
    """Create a socket file nothing accepts on (bound, never listening): connect() is
    refused."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
