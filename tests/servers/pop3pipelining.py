"""A scripted POP3 server (for tests/servers/scripted.py) that records which client lines
arrived together: each `recv` before the server answered is one batch, so a test can
count round trips (as tests/servers/pipelining.py does for SMTP). It offers PIPELINING
in CAPA or not, may refuse UIDL, and answers QUIT with +OK, with -ERR, or by hanging up.

Its mailbox follows RFC 1939: DELE only marks; the marked messages are removed when
QUIT is answered +OK (`deleted`), never otherwise.

A batch of several commands is proof of pipelining, and one command per batch of
lock-step (why: linebatches.py, which reads the batches).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .linebatches import LineBatches
from .scripted import Conn, HangUp

QuitAnswer = Literal["ok", "err", "hang-up"]
MESSAGES = (
    b"Subject: one\r\n\r\nfirst body\r\n",
    b"Subject: two\r\n\r\n.starts with a dot\r\n",
)


@dataclass
class Pop3PipeliningServer:
    """Configure, then pass `script` to ScriptedServer. `batches` holds the lines of each
    recv; `deleted` the numbers a QUIT answered +OK removed."""

    pipelining: bool = True
    uidl: bool = True  # False: UIDL is answered -ERR (RFC 1939 makes it optional)
    quit: QuitAnswer = "ok"
    messages: Sequence[bytes] = MESSAGES
    batches: list[list[str]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    def script(self, conn: Conn) -> None:
        with contextlib.suppress(HangUp):
            _Session(self, conn).run()


class _Session:
    def __init__(self, server: Pop3PipeliningServer, conn: Conn) -> None:
        self.server = server
        self.conn = conn
        self.lines = LineBatches(conn)
        self.marked: set[int] = set()

    def run(self) -> None:
        self.conn.send("+OK pop3pipelining.test ready")
        while self.lines.receive():
            batch: list[str] = []
            self.server.batches.append(batch)  # before any answer: the client may end
            while (line := self.lines.next_line()) is not None:
                batch.append(line)
                self._handle(line)

    def _handle(self, line: str) -> None:
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        numbers = [int(word) for word in argument.split() if word.isdigit()]
        if verb == "CAPA":
            offered = ["USER", "UIDL", "TOP"] + (["PIPELINING"] if self.server.pipelining else [])
            self.conn.send("+OK", *offered, ".")
        elif verb == "STAT":
            present = self._present()
            self.conn.send(f"+OK {len(present)} {sum(map(len, present.values()))}")
        elif verb in ("LIST", "UIDL"):
            self._scan(verb, numbers)
        elif verb in ("RETR", "TOP"):
            self._message(numbers)
        elif verb == "DELE":
            self.marked.add(numbers[0])
            self.conn.send("+OK marked")
        elif verb == "RSET":
            self.marked.clear()
            self.conn.send("+OK")
        elif verb == "QUIT":
            self._quit()
        else:
            self.conn.send("+OK")

    def _present(self) -> dict[int, bytes]:
        return {
            number: data
            for number, data in enumerate(self.server.messages, 1)
            if number not in self.marked
        }

    def _scan(self, verb: str, numbers: list[int]) -> None:
        if verb == "UIDL" and not self.server.uidl:
            self.conn.send("-ERR UIDL not supported")
            return
        present = self._present()

        def entry(number: int) -> str:
            return f"{number} {len(present[number]) if verb == 'LIST' else f'uid-{number}'}"

        if numbers:
            known = numbers[0] in present
            self.conn.send(f"+OK {entry(numbers[0])}" if known else "-ERR no such message")
        else:
            self.conn.send("+OK", *(entry(number) for number in present), ".")

    def _message(self, numbers: list[int]) -> None:
        data = self._present().get(numbers[0])
        if data is None:
            self.conn.send("-ERR no such message")
            return
        if len(numbers) > 1:  # TOP n LINES: the header and LINES body lines
            head, _, body = data.partition(b"\r\n\r\n")
            data = b"\r\n".join([head, b"", *body.split(b"\r\n")[: numbers[1]]]) + b"\r\n"
        stuffed = b"\r\n".join(
            b"." + line if line.startswith(b".") else line for line in data.split(b"\r\n")
        )
        self.conn.send("+OK")
        self.conn.send_bytes(stuffed.removesuffix(b"\r\n") + b"\r\n.\r\n")

    def _quit(self) -> None:
        answer = self.server.quit
        if answer == "hang-up":
            raise HangUp
        if answer == "err":
            self.conn.send("-ERR could not remove the marked messages")
            raise HangUp
        self.server.deleted.extend(sorted(self.marked))
        self.conn.send("+OK bye")
        raise HangUp
