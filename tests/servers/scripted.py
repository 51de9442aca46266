"""A scripted, possibly misbehaving TCP server on 127.0.0.1 for fault tests.

Each connection runs `script(conn)` in its own thread; the script decides what the
"server" says and when it stalls or hangs up. Lifetime is bounded: `stop()` (or leaving
the context manager) closes the listener and every open connection.

`answering` is the script of a line protocol's well-behaved server, which the POP3 and
SMTP scripts (pop3scripts.py, smtpscripts.py) configure: a greeting, then an answer per
command line. An answer is the lines to send, or a function of the connection and the
client's line that answers itself; it may end the session by raising `HangUp`
(`hang_up(...)` builds one that sends lines first).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Mapping, Sequence

from .managed import ManagedServer
from .ports import HOST


class Conn:
    """One client connection as lines: what it sent is recorded in `received`."""

    def __init__(self, sock: socket.socket, received: list[str]) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.received = received

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode())

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_line(self) -> str:
        """The next client line ("" when the client has gone)."""
        line = self.file.readline(65536).decode("utf-8", "replace").rstrip("\r\n")
        if line:
            self.received.append(line)
        return line

    def recv_bytes(self, size: int) -> bytes:
        """Exactly `size` octets (fewer only when the client has gone): a BDAT chunk."""
        return self.file.read(size)

    def close(self) -> None:
        """Hang up for real: the makefile() reader would otherwise keep the socket open."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


Script = Callable[[Conn], object]  # what a script returns is ignored
Answer = str | Sequence[str] | Callable[[Conn, str], object]


class HangUp(Exception):
    """Raised by an answer: the server closes the connection without another word."""


def hang_up(*lines: str) -> Callable[[Conn, str], object]:
    """An answer that sends `lines` (a reply cut short, say) and hangs up."""

    def answer(conn: Conn, line: str) -> object:
        if lines:
            conn.send(*lines)
        raise HangUp

    return answer


def answering(
    greeting: str, answers: Mapping[str, Answer], *, quit_reply: str, otherwise: str
) -> Script:
    """Greets, then answers each command line: by `answers` for the whole line (such as
    "RETR 2") or else its verb; QUIT without one gets `quit_reply` and a hang-up; any
    other command `otherwise`."""

    def script(conn: Conn) -> None:
        conn.send(greeting)
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            answer = answers.get(line, answers.get(verb))
            try:
                if callable(answer):
                    answer(conn, line)
                elif answer is not None:
                    conn.send(*([answer] if isinstance(answer, str) else answer))
                elif verb == "QUIT":
                    conn.send(quit_reply)
                    return
                else:
                    conn.send(otherwise)
            except HangUp:
                return

    return script


class ScriptedServer(ManagedServer):
    """Listens on a free loopback port; every connection is handed to `script`."""

    host = HOST

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[str] = []
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._conns: list[Conn] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._conns:
            conn.close()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            conn = Conn(sock, self.received)
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: Conn) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.script(conn)
        conn.close()
