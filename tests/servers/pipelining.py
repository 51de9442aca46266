"""A scripted SMTP server (for tests/servers/scripted.py) that records which client lines
arrived together: each `recv` before the server answered is one batch, so a test can
count round trips. It offers PIPELINING or not, refuses chosen recipients, and plays the
interop faults of a pipelined group (slow answers, a hang-up after a refused RCPT, a 421
in the middle, a 354 to DATA with no recipient accepted); with `chunking` it offers
CHUNKING and takes a message as one `BDAT n LAST` chunk.

A batch of several commands is proof of pipelining, and one command per batch of
lock-step (why: linebatches.py, which reads the batches).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from .linebatches import LineBatches
from .scripted import Conn, HangUp


@dataclass
class PipeliningServer:
    """Configure, then pass `script` to ScriptedServer. `batches` holds the command lines
    (and the data's final "." with what came with it) of each recv; `messages` the
    message of each transaction answered 250 at its dot."""

    pipelining: bool = True
    chunking: bool = False  # offer CHUNKING (RFC 3030; "BDAT n LAST" only)
    refused: frozenset[str] = frozenset()  # RCPT addresses answered 550
    hang_up_after_refusal: bool = False  # close right after the first 550 to RCPT
    closing_at_rcpt: int | None = None  # this RCPT (0-based) gets 421 and a hang-up
    data_without_recipients: bool = False  # 354 to DATA even when no RCPT was accepted
    reply_delay: float = 0.0  # seconds before each reply: a slow server
    batches: list[list[str]] = field(default_factory=list)
    messages: list[list[str]] = field(default_factory=list)

    def script(self, conn: Conn) -> None:
        with contextlib.suppress(HangUp):
            _Session(self, conn).run()


class _Session:
    def __init__(self, server: PipeliningServer, conn: Conn) -> None:
        self.server = server
        self.conn = conn
        self.lines = LineBatches(conn)
        self.accepted = 0
        self.rcpts = 0
        self.data: list[str] | None = None  # the message being received

    def run(self) -> None:
        self.conn.send("220 pipelining.test ESMTP")
        while self.lines.receive():
            batch: list[str] = []
            while (line := self.lines.next_line()) is not None:
                if self.data is None or line == ".":  # commands, and the data's end
                    # Recorded before it is answered: a client that has its answer
                    # may end the test at once.
                    if not batch:
                        self.server.batches.append(batch)
                    batch.append(line)
                if not self._handle(line):
                    return

    def _reply(self, *lines: str) -> None:
        if self.server.reply_delay:
            time.sleep(self.server.reply_delay)
        self.conn.send(*lines)

    def _handle(self, line: str) -> bool:
        """Answer one line; False: the server hangs up."""
        if self.data is not None:
            return self._data_line(line)
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            offered = ["250-pipelining.test", "250-8BITMIME", "250 SIZE 1000000"]
            if self.server.pipelining:
                offered.insert(1, "250-PIPELINING")
            if self.server.chunking:
                offered.insert(1, "250-CHUNKING")
            self._reply(*offered)
        elif verb == "MAIL":
            self.accepted = self.rcpts = 0
            self._reply("250 2.1.0 ok")
        elif verb == "RCPT":
            return self._rcpt(argument)
        elif verb == "DATA":
            self._start_data()
        elif verb == "BDAT":  # only "BDAT n LAST": one chunk per message
            self._chunk(self.lines.take(int(argument.split()[0])))
        elif verb == "QUIT":
            self._reply("221 2.0.0 bye")
            return False
        else:
            self._reply("250 ok")
        return True

    def _rcpt(self, argument: str) -> bool:
        address = argument.partition(":")[2].strip().strip("<>")
        number, self.rcpts = self.rcpts, self.rcpts + 1
        if number == self.server.closing_at_rcpt:
            self._reply("421 4.3.2 shutting down")
            return False
        if address in self.server.refused:
            self._reply("550 5.1.1 no such user")
            return not self.server.hang_up_after_refusal
        self.accepted += 1
        self._reply("250 2.1.5 ok")
        return True

    def _start_data(self) -> None:
        if self.accepted or self.server.data_without_recipients:
            self.data = []
            self._reply("354 go ahead")
        else:
            self._reply("554 5.5.1 no valid recipients")

    def _chunk(self, message: bytes) -> None:
        if not self.accepted:
            self._reply("554 5.5.1 no valid recipients")
            return
        self.server.messages.append(message.decode("utf-8", "replace").split("\r\n")[:-1])
        self._reply("250 2.0.0 queued")

    def _data_line(self, line: str) -> bool:
        assert self.data is not None
        if line != ".":
            self.data.append(line)
            return True
        message, self.data = self.data, None
        if not self.accepted:
            self._reply("554 5.5.1 no valid recipients")
        else:
            self.server.messages.append(message)
            self._reply("250 2.0.0 queued")
        return True
