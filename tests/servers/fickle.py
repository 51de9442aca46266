"""A POP3 server whose mailbox lives across sessions and who misbehaves differently in
each one, for the stateful hostile-server test (tests/robustness/test_hostile_stateful.py).

The mailbox follows RFC 1939: DELE only marks; the marked messages are removed when QUIT
arrives (the UPDATE state), before the +OK is sent, so a reply cut short after QUIT
still deletes; a session that ends any other way deletes nothing. Messages are held
unstuffed and stuffed on the way out as a server does: a "." that begins a CRLF line
(or the message) gets another in front of it; bare LF and bare CR are sent as they are.

Each session follows the next `Session` plan (a clean one when none is left): the UID
each message presents (changed, repeated, arbitrary bytes), the size LIST claims, and at
most one fault: hang up after `drop[1]` octets of reply number `drop[0]` (the greeting
is reply 0), or go silent at reply number `stall` until the client leaves.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .scripted import Conn

STALL_LIMIT = 20.0  # a stalling session ends after this even if the client never leaves


@dataclass(frozen=True)
class Message:
    ident: int
    body: bytes  # as the server holds it, unstuffed, ending in CRLF

    @property
    def default_uid(self) -> bytes:
        return b"uid-%d" % self.ident


@dataclass(frozen=True)
class Session:
    uids: dict[int, bytes] = field(default_factory=dict)  # ident -> UID (else default)
    size_lies: dict[int, int] = field(default_factory=dict)  # ident -> octets LIST adds
    drop: tuple[int, int] | None = None  # (reply number, octets of it sent, modulo its length)
    stall: int | None = None  # reply number at which the server goes silent


class HungUp(Exception):
    """The session ends here (dropped or stalled): nothing marked is deleted."""


def stuffed(body: bytes) -> bytes:
    """The body on the wire, before the terminator (written here, not taken from mailcli,
    so that the test does not share the client's idea of stuffing)."""
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


class FickleMailbox:
    """The server's state across sessions; `script` is a `Script` for ScriptedServer."""

    def __init__(self, messages: Iterable[Message]) -> None:
        self.messages = list(messages)
        self.plans: deque[Session] = deque()
        self.deleted: list[Message] = []  # removed at a QUIT, in order
        self.presented: dict[int, list[bytes]] = {}  # ident -> UIDs sent in UIDL, per session
        self.presented_sizes: dict[int, list[int]] = {}  # ident -> LIST size, per UIDL sent
        self.sessions = 0
        self._idle = threading.Condition()
        self._active = 0

    def wait_idle(self, timeout: float = STALL_LIMIT + 5) -> bool:
        """True once no session is running (the client's run may end before its
        session's thread does)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def script(self, conn: Conn) -> None:
        with self._idle:
            self._active += 1
            plan = self.plans.popleft() if self.plans else Session()
            self.sessions += 1
        try:
            with contextlib.suppress(HungUp):
                _Pop3Session(self, plan, conn).serve()
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()


class _Pop3Session:
    def __init__(self, mailbox: FickleMailbox, plan: Session, conn: Conn) -> None:
        self.mailbox = mailbox
        self.plan = plan
        self.conn = conn
        self.listed = list(mailbox.messages)  # numbered 1..n for this session
        self.marked: set[int] = set()
        self.replies = 0

    def uid(self, message: Message) -> bytes:
        return self.plan.uids.get(message.ident, message.default_uid)

    def size(self, message: Message) -> int:
        return max(0, len(message.body) + self.plan.size_lies.get(message.ident, 0))

    def serve(self) -> None:
        self.reply(b"+OK fickle POP3 ready\r\n")
        while line := self.conn.recv_line():
            verb, _, argument = line.partition(" ")
            if self.answer(verb.upper(), argument.strip()):
                return

    def answer(self, verb: str, argument: str) -> bool:
        """Reply to one command; True when the session is over."""
        if verb == "CAPA":
            self.reply(b"+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n")
        elif verb in ("USER", "PASS", "NOOP"):
            self.reply(b"+OK\r\n")
        elif verb == "STAT":
            self.reply(b"+OK %d %d\r\n" % (len(self.listed), sum(map(self.size, self.listed))))
        elif verb in ("LIST", "UIDL") and not argument:
            self.listing(verb)
        elif verb in ("RETR", "DELE", "LIST", "UIDL"):
            self.one_message(verb, argument)
        elif verb == "RSET":
            self.marked.clear()
            self.reply(b"+OK\r\n")
        elif verb == "QUIT":
            self.update()
            self.reply(b"+OK bye\r\n")
            return True
        else:
            self.reply(b"-ERR unknown command\r\n")
        return False

    def listing(self, verb: str) -> None:
        lines = [
            b"%d %s" % (number, self.uid(m) if verb == "UIDL" else b"%d" % self.size(m))
            for number, m in enumerate(self.listed, 1)
        ]
        if verb == "UIDL":
            for message in self.listed:
                self.mailbox.presented.setdefault(message.ident, []).append(self.uid(message))
                self.mailbox.presented_sizes.setdefault(message.ident, []).append(
                    self.size(message)
                )
        self.reply(b"".join(line + b"\r\n" for line in [b"+OK", *lines, b"."]))

    def one_message(self, verb: str, argument: str) -> None:
        number = int(argument) if argument.isascii() and argument.isdigit() else 0
        if not 1 <= number <= len(self.listed) or number in self.marked:
            self.reply(b"-ERR no such message\r\n")
            return
        message = self.listed[number - 1]
        if verb == "RETR":
            wire = stuffed(message.body) + b".\r\n"
            self.reply(b"+OK %d octets\r\n" % self.size(message) + wire)
        elif verb == "DELE":
            self.marked.add(number)
            self.reply(b"+OK marked\r\n")
        else:
            value = self.uid(message) if verb == "UIDL" else b"%d" % self.size(message)
            self.reply(b"+OK %d %s\r\n" % (number, value))

    def update(self) -> None:
        """RFC 1939 UPDATE state: remove the marked messages (before the +OK is sent)."""
        gone = [self.listed[number - 1] for number in sorted(self.marked)]
        self.mailbox.deleted.extend(gone)
        self.mailbox.messages = [m for m in self.mailbox.messages if m not in gone]

    def reply(self, data: bytes) -> None:
        number, self.replies = self.replies, self.replies + 1
        if self.plan.stall == number:
            self.stall()
        if self.plan.drop is not None and self.plan.drop[0] == number:
            self.conn.send_bytes(data[: self.plan.drop[1] % len(data)])  # never all of it
            self.conn.close()
            raise HungUp
        self.conn.send_bytes(data)

    def stall(self) -> None:
        """Say nothing until the client hangs up (its --timeout), at most STALL_LIMIT."""
        self.conn.sock.settimeout(STALL_LIMIT)
        with contextlib.suppress(OSError):
            while self.conn.recv_line():
                pass
        raise HungUp
