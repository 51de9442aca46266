"""Servers slow on purpose, for the time family (`tests/robustness/test_deadlines.py`).

Each is a `Script` for `ScriptedServer`: it plays a normal POP3, SMTP or OAuth2 token
endpoint up to one reply (`at`: the greeting or a command's verb), then misbehaves there:
`silent` says nothing more, `dribble` starts the reply and then sends one byte every
INTERVAL seconds without ever completing it, so no single read of the client ever times
out. Both go on until the client hangs up or the server is stopped: a client that does
not give up keeps its test waiting until the test's own safety timeout, never for ever.
"""

from __future__ import annotations

import time
from typing import Literal

from .saslscripts import scram_server_first
from .scripted import Conn, Script

INTERVAL = 0.05  # seconds between two bytes of a dribble
Behaviour = Literal["silent", "dribble"]
BEHAVIOURS: tuple[Behaviour, ...] = ("silent", "dribble")
EHLO_REPLY = ("250-slow", "250-PIPELINING", "250-AUTH XOAUTH2 OAUTHBEARER", "250 8BITMIME")
MULTILINE_POP3 = frozenset({"CAPA", "LIST", "UIDL", "TOP", "RETR"})


def misbehave(conn: Conn, behaviour: Behaviour, head: bytes) -> None:
    """Silence until the client hangs up, or `head` and then a byte every INTERVAL."""
    if behaviour == "silent":
        while conn.recv_line():  # "" once the client has gone
            pass
        return
    conn.send_bytes(head)
    while True:  # ends with OSError once the client or the server closes
        time.sleep(INTERVAL)
        conn.send_bytes(b"x")


def pop3(at: str, behaviour: Behaviour, *, pipelining: bool = False) -> Script:
    """A POP3 server with one 40-octet message, slow at `at` ("greeting" or a verb);
    with `pipelining` its CAPA offers PIPELINING (a pipelined command's reply: the
    replies before it are sent)."""

    def script(conn: Conn) -> None:
        if at == "greeting":
            return misbehave(conn, behaviour, b"+OK ")
        conn.send("+OK slow POP3 ready")
        while line := conn.recv_line():
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb == at:
                multiline = verb in MULTILINE_POP3 and not (verb in ("LIST", "UIDL") and argument)
                return misbehave(conn, behaviour, b"+OK\r\n" if multiline else b"+OK ")
            if not pop3_answer(conn, verb, argument, pipelining=pipelining):
                return
        return None

    return script


def pop3_answer(conn: Conn, verb: str, argument: str, *, pipelining: bool = False) -> bool:
    """A well-behaved answer; False after QUIT."""
    if verb == "CAPA":
        offered = ["USER", "UIDL", "TOP", "SASL XOAUTH2 OAUTHBEARER"]
        conn.send("+OK", *offered, *(["PIPELINING"] if pipelining else []), ".")
    elif verb == "STAT":
        conn.send("+OK 1 40")
    elif verb in ("LIST", "UIDL"):
        entry = "1 40" if verb == "LIST" else "1 uid-1"
        conn.send(f"+OK {entry}" if argument else "+OK", *([] if argument else [entry, "."]))
    elif verb in ("TOP", "RETR"):
        conn.send("+OK", "Subject: slow", "", "body", ".")
    elif verb == "QUIT":
        conn.send("+OK bye")
        return False
    else:
        conn.send("+OK")
    return True


def smtp(at: str, behaviour: Behaviour, *, chunking: bool = False) -> Script:
    """An SMTP server offering PIPELINING (and CHUNKING when `chunking`), slow at `at`:
    "greeting", a verb (a pipelined MAIL or RCPT too: the replies before it are sent),
    "BDAT" (the reply to a chunk), or "." (the reply to the message's final dot)."""
    ehlo = (*EHLO_REPLY[:-1], "250-8BITMIME", "250 CHUNKING") if chunking else EHLO_REPLY

    def script(conn: Conn) -> None:
        if at == "greeting":
            return misbehave(conn, behaviour, b"220 ")
        conn.send("220 slow ESMTP")
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if verb == "BDAT":  # its chunk is part of the command, whatever the answer
                conn.recv_bytes(int(line.split()[1]))
            if verb == at:
                return misbehave(conn, behaviour, b"250-" if verb == "EHLO" else b"250 ")
            if verb == "EHLO":
                conn.send(*ehlo)
            elif verb == "BDAT":
                conn.send("250 2.0.0 queued")
            elif verb == "DATA":
                conn.send("354 go ahead")
                while conn.recv_line() not in (".", ""):
                    pass
                if at == ".":
                    return misbehave(conn, behaviour, b"250 ")
                conn.send("250 2.0.0 queued")
            elif verb == "QUIT":
                conn.send("221 bye")
                return None
            else:
                conn.send("250 ok")
        return None

    return script


def smtp_scram(behaviour: Behaviour) -> Script:
    """An SMTP server offering only AUTH SCRAM-SHA-256 that answers the client-first with a
    sound server-first, then is slow with the server-final (SCRAM's second step)."""

    def script(conn: Conn) -> None:
        conn.send("220 slow ESMTP")
        while line := conn.recv_line():
            words = line.split(" ")
            if words[0].upper() == "EHLO":
                conn.send("250-slow", "250 AUTH SCRAM-SHA-256")
            elif words[0].upper() == "AUTH" and len(words) == 3:
                conn.send("334 " + scram_server_first(words[2]))
                conn.recv_line()  # the client-final, with its proof
                return misbehave(conn, behaviour, b"334 ")
            else:
                conn.send("250 ok")
        return None

    return script


def token_endpoint(behaviour: Behaviour) -> Script:
    """An OAuth2 token endpoint (HTTP/1.1) that reads the request, then is slow."""

    def script(conn: Conn) -> None:
        length = 0
        while (header := conn.file.readline(65536)) not in (b"\r\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        conn.file.read(length)
        misbehave(conn, behaviour, b"HTTP/1.1 200 OK\r\nX-Slow: ")

    return script


def socks5_proxy(behaviour: Behaviour) -> Script:
    """A SOCKS5 proxy (no authentication) slow with its reply to CONNECT: silent, or its
    head and then a byte every INTERVAL, as the 255-octet name of its bound address."""

    def script(conn: Conn) -> None:
        version, count = conn.recv_bytes(2)
        conn.recv_bytes(count)  # the methods offered
        conn.send_bytes(bytes([version, 0]))  # no authentication
        head = conn.recv_bytes(5)  # VER CMD RSV ATYP and an address's first octet
        length = {1: 4, 4: 16}.get(head[3], head[4] + 1)
        conn.recv_bytes(length - 1 + 2)  # the rest of the address, the port
        misbehave(conn, behaviour, b"\x05\x00\x00\x03\xff")

    return script


def steady_retr(body: bytes, piece: int, pause: float) -> Script:
    """A POP3 server whose one message arrives `piece` octets at a time, `pause` seconds
    apart: slow, but moving."""

    def script(conn: Conn) -> None:
        conn.send("+OK steady POP3 ready")
        while line := conn.recv_line():
            verb, _, argument = line.partition(" ")
            if verb.upper() != "RETR":
                if not pop3_answer(conn, verb.upper(), argument):
                    return
                continue
            conn.send("+OK")
            for offset in range(0, len(body), piece):
                conn.send_bytes(body[offset : offset + piece])
                time.sleep(pause)
            conn.send_bytes(b".\r\n")

    return script
