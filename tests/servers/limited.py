"""A scripted ESMTP server with a connection limit, for the audit's limiter tests.

It speaks enough SMTP for every audit probe (EHLO, MAIL, RCPT, DATA ended only by
CRLF.CRLF, RSET, NOOP, VRFY, QUIT; recipients only at its own domain) and counts the
connections it has open. `refuse_first` turns away the first N connections as a server at
its limit does: `421` (Exim's smtp_accept_max), `close` (hang up before the greeting) or
`silent` (never greet, like OpenSMTPD's delayed greeting); `refuse_all` does it to every
connection. `catch_all` accepts every recipient that addresses this server itself (its
domain or address literal, or no domain), whatever its local part holds (`%`, `!`,
quotes): a local catch-all, which relays nothing.
"""

from __future__ import annotations

import threading

from tests.servers.managed import ManagedServer
from tests.servers.scripted import Conn, ScriptedServer

DOMAIN = "limited.test"


class LimitedSmtp(ManagedServer):
    def __init__(
        self,
        fault: str = "421",
        refuse_first: int = 0,
        refuse_all: bool = False,
        catch_all: bool = False,
    ):
        self.catch_all = catch_all
        self.fault = fault
        self.refuse_first = refuse_first
        self.refuse_all = refuse_all
        self.accepted = 0  # connections seen in all
        self.refused = 0
        self._lock = threading.Lock()
        self.server = ScriptedServer(self._script)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def _script(self, conn: Conn) -> None:
        with self._lock:
            self.accepted += 1
            refuse = self.refuse_all or self.accepted <= self.refuse_first
            self.refused += refuse
        if not refuse:
            _serve(conn, self.catch_all)
        elif self.fault == "421":
            conn.send("421 4.3.2 too many connections, try again later")
        elif self.fault == "silent":
            conn.recv_line()  # until the client gives up and hangs up


def _serve(conn: Conn, catch_all: bool) -> None:
    conn.send(f"220 {DOMAIN} ESMTP limited")
    while line := conn.recv_line():
        verb = line.split(" ")[0].upper()
        if verb == "QUIT":
            conn.send("221 bye")
            return
        if verb == "EHLO":
            conn.send(f"250-{DOMAIN}", "250-PIPELINING", "250 SIZE 100000")
        elif verb == "RCPT":
            ours = _is_ours(line.partition(":")[2].strip("<> "), catch_all)
            conn.send("250 ok" if ours else "554 5.7.1 relay access denied")
        elif verb == "DATA":
            conn.send("354 go ahead")
            if not _message(conn):
                return
            conn.send("250 queued")
        elif verb == "MAIL" and "SIZE=" in line.upper():
            conn.send("552 5.3.4 message too big")
        elif verb in ("HELO", "MAIL", "RSET", "NOOP"):
            conn.send("250 ok")
        else:
            conn.send("502 5.5.1 not implemented")


def _is_ours(address: str, catch_all: bool) -> bool:
    _local, at, domain = address.rpartition("@")
    if not catch_all:
        return domain.lower() == DOMAIN
    return not at or '"' in domain or domain.lower() in (DOMAIN, "[127.0.0.1]")


def _message(conn: Conn) -> bool:
    """Read DATA up to CRLF.CRLF only; False when the client hung up first."""
    previous = b"\r\n"
    while raw := conn.file.readline(65536):
        if previous.endswith(b"\r\n") and raw == b".\r\n":
            return True
        previous = raw
    return False
