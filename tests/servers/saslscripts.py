"""Scripts for tests/servers/scripted.py that play an SMTP or a POP3 server offering SASL
mechanisms and refusing every login, for the OAuth2 tests: how mailcli answers an error
challenge, a temporary failure, or a mechanism the server does not offer.

Every client line is recorded in `received` as sent, empty ones included: the client's
answer to an error challenge is an empty line (XOAUTH2) or `AQ==` (OAUTHBEARER)."""

from __future__ import annotations

import base64
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


# SCRAM servers that misbehave after the client's first message. Each fault is the
# server-first message (NONCE stands for the client's nonce) and what follows the
# client-final: a server-final message (sent as a continuation), "" for success with no
# server-final at all, or None when the client must not answer the server-first.
SCRAM_SALT = "QSXCR+Q6sek8bf92"
SCRAM_GOOD_FIRST = f"r=NONCEsrv,s={SCRAM_SALT},i=4096"
SCRAM_FAULTS: dict[str, tuple[str, str | None]] = {
    "wrong-signature": (SCRAM_GOOD_FIRST, "v=" + base64.b64encode(bytes(32)).decode()),
    "no-signature": (SCRAM_GOOD_FIRST, ""),
    "invalid-proof": (SCRAM_GOOD_FIRST, "e=invalid-proof"),
    "foreign-nonce": (f"r=someone-elses-nonce,s={SCRAM_SALT},i=4096", None),
    "zero-iterations": (f"r=NONCEsrv,s={SCRAM_SALT},i=0", None),
    "huge-iterations": (f"r=NONCEsrv,s={SCRAM_SALT},i={2**31}", None),
    "malformed": ("this is no SCRAM message", None),
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def scram_server_first(client_first_b64: str, template: str = SCRAM_GOOD_FIRST) -> str:
    """The server-first `template` (base64) for the client's (base64) client-first, its
    NONCE replaced by the client's nonce."""
    client_first = base64.b64decode(client_first_b64).decode()
    nonce = client_first.split(",r=", 1)[1]
    return _b64(template.replace("NONCE", nonce))


def smtp_scram(mechanism: str, fault: str) -> Script:
    """An SMTP server offering `AUTH <mechanism>` that plays SCRAM_FAULTS[fault]. The
    session is over once the fault is played: it records whatever else arrives."""
    return _scram_script(
        fault,
        greeting="220 scripted.example.test ESMTP",
        capability=("EHLO", ("250-scripted.example.test", f"250 AUTH {mechanism}")),
        challenge="334 ",
        answers=("235 2.7.0 Authenticated", REFUSED_SMTP, "502 5.5.1 not here"),
    )


def pop3_scram(mechanism: str, fault: str) -> Script:
    """A POP3 server offering `SASL <mechanism>` that plays SCRAM_FAULTS[fault], as
    smtp_scram does."""
    return _scram_script(
        fault,
        greeting="+OK scripted POP3 ready",
        capability=("CAPA", ("+OK", "USER", f"SASL {mechanism}", ".")),
        challenge="+ ",
        answers=("+OK logged in", REFUSED_POP3, "-ERR not here"),
    )


def _scram_script(
    fault: str,
    *,
    greeting: str,
    capability: tuple[str, tuple[str, ...]],
    challenge: str,
    answers: tuple[str, str, str],
) -> Script:
    """The fault played in one protocol's words: `capability` is the verb asking what
    is offered and its answer, `challenge` a continuation's prefix, `answers` the
    success without a server-final, the refusal of anything after the fault, and the
    reply to any other command."""
    asking, offered = capability
    success, refused, otherwise = answers

    def script(conn: Conn) -> None:
        conn.send(greeting)
        lines = raw_lines(conn)
        for line in lines:
            words = line.split(" ")
            if words[0].upper() == asking:
                conn.send(*offered)
            elif words[0].upper() == "AUTH" and len(words) == 3:
                conn.send(challenge + scram_server_first(words[2], SCRAM_FAULTS[fault][0]))
                final = SCRAM_FAULTS[fault][1]
                if final is not None and next(lines, None) is not None:
                    conn.send(challenge + _b64(final) if final else success)
                for _ in lines:  # nothing more is expected: record it and refuse it
                    conn.send(refused)
                return
            else:
                conn.send(otherwise)

    return script


# The status each fault ends mailcli with: a server that cannot prove it knows the
# password, or refuses the proof, is a failed login (77); a broken exchange is 76.
SCRAM_FAULT_STATUS = {
    "wrong-signature": 77,
    "no-signature": 77,
    "invalid-proof": 77,
    "foreign-nonce": 76,
    "zero-iterations": 76,
    "huge-iterations": 76,
    "malformed": 76,
}


def assert_scram_fault_handled(
    fault: str, code: int, stderr: str, received: list[str], password: str
) -> None:
    """mailcli's run against the fault's server (`received`: the client's lines): the
    fault's status with one error line and no traceback; nothing sent after the fault
    (the client-final only where the server-first was sound); neither the password nor
    any client line of the exchange in stderr (the trace masks them)."""
    assert code == SCRAM_FAULT_STATUS[fault], stderr
    assert "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if line.startswith("mailcli: error: ")]) == 1
    auth = next(i for i, line in enumerate(received) if line.startswith("AUTH "))
    answered = SCRAM_FAULTS[fault][1] is not None  # the client-final went out
    assert len(received) == auth + 1 + answered, received
    assert password not in stderr
    for line in received[auth:]:  # every client line of the exchange is masked
        assert line.split(" ")[-1] not in stderr
