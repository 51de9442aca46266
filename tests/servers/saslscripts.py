"""Scripts for tests/servers/scripted.py that play an SMTP or a POP3 server offering SASL
mechanisms and refusing every login, for the OAuth2 tests: how mailcli answers an error
challenge, a temporary failure, or a mechanism the server does not offer.

Every client line is recorded in `received` as sent, empty ones included: the client's
answer to an error challenge is an empty line (XOAUTH2) or `AQ==` (OAUTHBEARER)."""

from __future__ import annotations

from collections.abc import Iterator

from .scripted import Conn, Script

REFUSED_SMTP = "535 5.7.8 Authentication credentials invalid"
REFUSED_POP3 = "-ERR [AUTH] Authentication failed."


def raw_lines(conn: Conn) -> Iterator[str]:
    """Client lines, empty ones included, until the client hangs up."""
    while raw := conn.file.readline(65536):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        conn.received.append(line)
        yield line


def smtp_refusing(offer: str, reply: str) -> Script:
    """An SMTP server offering `AUTH <offer>` that answers every AUTH with `reply`: a 334
    error challenge is followed, after the client's answer, by REFUSED_SMTP; any other
    reply (a 454, say) stands alone. Other commands than EHLO, AUTH and QUIT get 502."""

    def script(conn: Conn) -> None:
        conn.send("220 scripted.example.test ESMTP")
        lines = raw_lines(conn)
        for line in lines:
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                conn.send("250-scripted.example.test", f"250 AUTH {offer}")
            elif verb == "AUTH":
                conn.send(reply)
                if reply.startswith("334"):
                    next(lines, None)  # the client's answer to the challenge
                    conn.send(REFUSED_SMTP)
            elif verb == "QUIT":
                conn.send("221 bye")
                return
            else:
                conn.send("502 5.5.1 not here")

    return script


def pop3_refusing(sasl: str, reply: str) -> Script:
    """A POP3 server offering `SASL <sasl>` that answers every token with `reply`: a `+`
    error challenge is followed, after the client's answer, by REFUSED_POP3. The
    two-step form (`AUTH MECHANISM` alone) gets `+ ` first, to ask for the token."""

    def script(conn: Conn) -> None:
        conn.send("+OK scripted POP3 ready")
        lines = raw_lines(conn)
        for line in lines:
            words = line.split(" ")
            verb = words[0].upper()
            if verb == "CAPA":
                conn.send("+OK", "USER", f"SASL {sasl}", ".")
            elif verb == "AUTH":
                if len(words) == 2:
                    conn.send("+ ")
                    next(lines, None)
                conn.send(reply)
                if reply.startswith("+"):
                    next(lines, None)
                    conn.send(REFUSED_POP3)
            elif verb == "QUIT":
                conn.send("+OK bye")
                return

    return script
