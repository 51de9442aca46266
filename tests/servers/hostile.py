"""Misbehaving POP3 and SMTP servers, one script per misbehaviour, for fault tests.

Each mode is a `Script` for `ScriptedServer`: it plays a normal server up to the point
where it turns hostile. The bytes it sends are bounded (it stops when the client hangs
up, or after `FLOOD` octets), so a client bug cannot make a test run forever.
"""

from __future__ import annotations

import threading

from .scripted import Conn, Script

FLOOD = 200 * 1024 * 1024  # a stream "without end": far more than any client should hold
RELEASE = threading.Event()  # set by tests to end stalls early


def _flood(conn: Conn, unit: bytes) -> None:
    sent = 0
    while sent < FLOOD:
        conn.send_bytes(unit)
        sent += len(unit)


def _stall(conn: Conn) -> None:
    RELEASE.wait(300)


def pop3(mode: str) -> Script:
    """A POP3 server with one message of 40 octets (per LIST) that misbehaves by `mode`."""

    def script(conn: Conn) -> None:
        if mode == "no-greeting":
            return _stall(conn)
        if mode == "endless-greeting":
            conn.send_bytes(b"+OK ")
            return _flood(conn, b"x" * 65536)
        conn.send("+OK hostile POP3 ready")
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if _pop3_reply(conn, mode, verb, line):
                return

    return script


def _pop3_reply(conn: Conn, mode: str, verb: str, line: str) -> bool:
    """Answer one command; True when the script is done (hung up or stalling)."""
    if verb == "CAPA":
        stls = [] if mode == "no-stls" else ["STLS"]
        conn.send("+OK", "USER", "UIDL", "PIPELINING", *stls, ".")
    elif verb == "STLS":
        if mode == "stls-handshake-fails":
            return _bad_tls(conn)
        conn.send("-ERR no TLS here")
    elif verb == "PASS":
        if mode == "stall-after-pass":
            _stall(conn)
            return True
        conn.send("+OK logged in")
    elif verb == "STAT":
        conn.send("+OK one two" if mode == "malformed-status" else "+OK 1 40")
    elif verb in ("LIST", "UIDL"):
        return _listing(conn, mode, "1 40" if verb == "LIST" else "1 uid-1")
    elif verb == "RETR":
        return _retr(conn, mode)
    elif verb == "QUIT":
        conn.send("+OK bye")
        return True
    else:
        conn.send("+OK")
    return False


def _bad_tls(conn: Conn) -> bool:
    conn.send("+OK begin TLS")
    conn.send_bytes(b"this is not a TLS server hello\r\n" * 4)
    return True


def _listing(conn: Conn, mode: str, entry: str) -> bool:
    if mode == "endless-listing":
        conn.send("+OK")
        _flood(conn, b"1 40\r\n" * 10000)
        return True
    conn.send("+OK", entry, ".")
    return False


def _retr(conn: Conn, mode: str) -> bool:
    conn.send("+OK 40 octets")
    if mode == "close-mid-retr":
        conn.send("Subject: cut short", "", "the first line")
        return True
    if mode == "size-lie":
        conn.send("Subject: much more than 40 octets", "")
        _flood(conn, b"y" * 78 + b"\r\n")
        return True
    conn.send("Subject: fine", "", "body", ".")
    return False


def smtp(mode: str) -> Script:
    """An SMTP server that misbehaves by `mode`."""

    def script(conn: Conn) -> None:
        if mode == "no-greeting":
            return _stall(conn)
        if mode == "endless-reply":
            conn.send("220 hostile ESMTP")
            conn.recv_line()
            return _flood(conn, b"250-" + b"x" * 60 + b"\r\n")
        conn.send("220 hostile ESMTP")
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if _smtp_reply(conn, mode, verb):
                return

    return script


def _smtp_reply(conn: Conn, mode: str, verb: str) -> bool:
    if verb == "EHLO":
        offers = ["250-hostile", "250-AUTH PLAIN LOGIN"]
        conn.send(*offers, "250 STARTTLS" if mode != "no-starttls" else "250 8BITMIME")
    elif verb == "STARTTLS" and mode == "starttls-handshake-fails":
        conn.send("220 go ahead")
        conn.send_bytes(b"not TLS at all\r\n" * 4)
        return True
    elif verb == "DATA":
        conn.send("354 go ahead")
        if mode == "close-mid-data":
            conn.recv_line()
            return True
        while conn.recv_line() not in (".", ""):
            pass
        conn.send("250 queued")
    elif verb == "QUIT":
        conn.send("221 bye")
        return True
    else:
        conn.send("250 ok")
    return False
