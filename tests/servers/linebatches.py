"""Reading a client's lines as they arrived together, for the scripted servers that count
round trips (pipelining.py for SMTP, pop3pipelining.py for POP3).

A client's single write of a few lines arrives in one `recv` on loopback (one segment);
a client that waits for each reply cannot send its next line before the answer. So one
`receive()` is one batch: the lines `next_line()` then hands out until it returns None
came in one write.
"""

from __future__ import annotations

from .scripted import Conn, HangUp


class LineBatches:
    """The octets received from `conn` and not yet handed out, split into CRLF lines."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.pending = b""

    def receive(self) -> bool:
        """One recv (continued until a line ends) into `pending`; False at EOF."""
        while True:
            chunk = self.conn.sock.recv(1 << 20)
            if not chunk:
                return False
            self.pending += chunk
            if self.pending.endswith(b"\n"):
                return True

    def next_line(self) -> str | None:
        """The next whole line of what was received, or None when none is left."""
        line, found, rest = self.pending.partition(b"\r\n")
        if not found:
            return None
        self.pending = rest
        return line.decode("utf-8", "replace")

    def take(self, size: int) -> bytes:
        """The next `size` octets (a BDAT chunk), read further when needed."""
        while len(self.pending) < size:
            chunk = self.conn.sock.recv(1 << 20)
            if not chunk:
                raise HangUp
            self.pending += chunk
        taken, self.pending = self.pending[:size], self.pending[size:]
        return taken
