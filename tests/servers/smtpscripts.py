"""Scripts for tests/servers/scripted.py that play small SMTP servers with exact
extensions and replies (what Postfix or aiosmtpd will not produce on demand).

`smtp_server` is the one well-behaved SMTP server the scripts share: it greets, answers
EHLO with its extensions, takes a message after DATA up to the lone dot, answers QUIT
with `221 bye` and hangs up, and every other command `250 ok`, unless `answers` says
otherwise (see `scripted.answering`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .scripted import Answer, Conn, HangUp, Script, answering


def receive_data(queued: str) -> Callable[[Conn, str], object]:
    """DATA's answer: 354, the message's lines (recorded in `received` like commands)
    up to the lone dot, then `queued`; a client gone before the dot ends the session."""

    def answer(conn: Conn, line: str) -> object:
        conn.send("354 go ahead")
        while raw := conn.file.readline(65536):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if text == ".":
                conn.send(queued)
                return None
            if text:
                conn.received.append(text)
        raise HangUp

    return answer


def smtp_server(
    ehlo: str | Sequence[str] = ("250-scripted", "250 8BITMIME"),
    answers: Mapping[str, Answer] | None = None,
    *,
    greeting: str = "220 scripted ESMTP",
    queued: str = "250 2.0.0 queued",
) -> Script:
    """An SMTP server whose EHLO reply is `ehlo` and whose DATA ends with `queued`;
    `answers` maps a command's verb, or a whole command line, to its answer."""
    table = {"EHLO": ehlo, "DATA": receive_data(queued), **(answers or {})}
    return answering(greeting, table, quit_reply="221 bye", otherwise="250 ok")
