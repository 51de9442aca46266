"""Scripts for tests/servers/scripted.py that play small, well-behaved POP3 servers, for
tests that need a POP3 server with exact capabilities (what Dovecot will not offer on
demand) but no misbehaviour."""

from __future__ import annotations

from .scripted import Conn, Script


def minimal_server(capabilities: list[str]) -> Script:
    """A POP3 server with one message; CAPA lists `capabilities`; every other command
    (USER, PASS, UIDL...) is answered +OK."""

    def script(conn: Conn) -> None:
        conn.send("+OK ready")
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if verb == "CAPA":
                conn.send("+OK", *capabilities, ".")
            elif verb == "STAT":
                conn.send("+OK 1 12")
            elif verb == "RETR":
                conn.send("+OK", "Subject: x", "", "..dot", ".")
            elif verb == "QUIT":
                conn.send("+OK bye")
                return
            else:
                conn.send("+OK")

    return script
