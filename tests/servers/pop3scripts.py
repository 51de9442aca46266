"""Scripts for tests/servers/scripted.py that play small POP3 servers with exact
capabilities and answers (what Dovecot will not offer on demand).

`pop3_server` is the one well-behaved POP3 server the scripts share: it greets, lists
its capabilities for CAPA, answers QUIT with `+OK bye` and hangs up, and answers every
other command `+OK`, unless `answers` says otherwise. An answer is the lines to send, or
a function of the connection and the client's line that answers itself; it may end the
session by raising `HangUp` (`hang_up(...)` builds one that sends lines first)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .scripted import Conn, Script

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

    def script(conn: Conn) -> None:
        conn.send(greeting)
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            answer = table.get(line, table.get(verb))
            try:
                if callable(answer):
                    answer(conn, line)
                elif answer is not None:
                    conn.send(*([answer] if isinstance(answer, str) else answer))
                elif verb == "QUIT":
                    conn.send("+OK bye")
                    return
                else:
                    conn.send(otherwise)
            except HangUp:
                return

    return script


def minimal_server(capabilities: list[str]) -> Script:
    """A POP3 server with one message; CAPA lists `capabilities`; every other command
    (USER, PASS, UIDL...) is answered +OK."""
    return pop3_server(
        capabilities,
        {"STAT": "+OK 1 12", "RETR": ("+OK", "Subject: x", "", "..dot", ".")},
    )
