"""Scripts for tests/servers/scripted.py that play small POP3 servers with exact
capabilities and answers (what Dovecot will not offer on demand).

`pop3_server` is the one well-behaved POP3 server the scripts share: it greets, lists
its capabilities for CAPA, answers QUIT with `+OK bye` and hangs up, and answers every
other command `+OK`, unless `answers` says otherwise (see `scripted.answering`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .scripted import Answer, Script, answering


def pop3_server(
    capabilities: Sequence[str] = ("USER",),
    answers: Mapping[str, Answer] | None = None,
    *,
    greeting: str = "+OK ready",
    otherwise: str = "+OK",
) -> Script:
    """A POP3 server; `answers` maps a command's verb, or a whole command line such as
    "RETR 2" (which wins), to its answer; commands without one get `otherwise`."""
    table = {"CAPA": ("+OK", *capabilities, "."), **(answers or {})}
    return answering(greeting, table, quit_reply="+OK bye", otherwise=otherwise)


def minimal_server(capabilities: list[str]) -> Script:
    """A POP3 server with one message; CAPA lists `capabilities`; every other command
    (USER, PASS, UIDL...) is answered +OK."""
    return pop3_server(
        capabilities,
        {"STAT": "+OK 1 12", "RETR": ("+OK", "Subject: x", "", "..dot", ".")},
    )


def no_uidl_server() -> Script:
    """A POP3 server with one message ("Subject: only") that answers UIDL -ERR (RFC 1939
    makes it optional)."""
    return pop3_server(
        ["USER"],
        {
            "LIST": ("+OK", "1 30", "."),
            "UIDL": "-ERR no UIDL here",
            "RETR": ("+OK", "Subject: only", "", "body", "."),
        },
    )
