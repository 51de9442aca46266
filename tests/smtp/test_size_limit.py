"""A message over the server's SIZE is refused before MAIL FROM.

The server's EHLO announces its limit (RFC 1870) and mailcli knows the message's size
before MAIL FROM, so it says so itself: exit 69 (a permanent refusal of the message,
RejectedError), both numbers named, and the server sees EHLO (and AUTH) but never MAIL.
In sendmail mode a message too big is final, not queued; a queued one that a server's
limit refuses moves to failed/. `SIZE` without a number, or `SIZE 0`, means no limit.

A second Postfix with `message_size_limit = 20000` is the server; its `disconnect from`
log line counts the commands each client sent (`ehlo=2 starttls=1 auth=1 quit=1 ...`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Mailcli, Result, run_cli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, ScriptedServer

LIMIT = 20000
BIG_BODY = "x" * 70 + "\n"  # * 400 lines: about 28,800 octets with CRLF and headers


class SmallPostfix(Postfix):
    """The test Postfix with a message size limit of LIMIT octets."""

    def _write_config(self) -> None:
        super()._write_config()
        main = self.config_dir / "main.cf"
        text = main.read_text().replace(
            "message_size_limit = 62914560", f"message_size_limit = {LIMIT}"
        )
        assert f"message_size_limit = {LIMIT}" in text
        main.write_text(text)
        an_hour_ago = time.time() - 3600  # Postfix distrusts a config file changed just now
        os.utime(main, (an_hour_ago, an_hour_ago))


@pytest.fixture(scope="module")
def small(postfix: Postfix, dovecot: Dovecot) -> Iterator[SmallPostfix]:
    # `postfix` only makes sure a Postfix can run here (or skips, or fails under CI).
    with SmallPostfix(dovecot) as server:
        yield server


def client_sessions(server: Postfix) -> list[str]:
    """The command counts of the finished SMTP sessions that said EHLO (Postfix's
    `disconnect from ... ehlo=1 mail=1 ... commands=N` lines); readiness probes, which
    connect and leave without a command, are not client sessions."""
    return [
        line
        for line in re.findall(r"disconnect from \S+ (.*)", server.maillog())
        if "ehlo=" in line
    ]


def next_session(server: Postfix, before: int) -> str:
    """The first client session logged after the `before` earlier ones (the log line is
    written after the client has gone, so wait for it)."""
    deadline = time.monotonic() + 10
    while len(sessions := client_sessions(server)) <= before:
        assert time.monotonic() < deadline, server.maillog()
        time.sleep(0.05)
    return sessions[before]


def big_send(server: Postfix, box: Mailbox) -> Result:
    """A message over LIMIT, from ``box`` to itself, over STARTTLS with AUTH."""
    sender = Mailcli(Account.submission(server, box.user, box.password))
    message = ["--from", box.address, "--to", box.address, "--subject", "too big"]
    return sender("send", *message, "--trace", input=BIG_BODY * 400)


def test_send_over_the_servers_size_is_refused_before_mail_from(
    small: SmallPostfix, mailbox: Mailbox
) -> None:
    before = len(client_sessions(small))
    result = big_send(small, mailbox)
    assert result.code == 69, result.stderr
    size = re.search(r"the message is (\d+) octets", result.stderr)
    assert size and int(size.group(1)) > LIMIT, result.stderr
    assert f"limit of {LIMIT} octets" in result.stderr
    trace = result.stderr.lower()
    assert "~> auth" in trace  # the session got as far as AUTH ...
    assert "~> mail from" not in trace and "-> mail from" not in trace  # ... and no further
    session = next_session(small, before)
    assert "auth=1" in session and "mail=" not in session, session
    assert small.messages(mailbox.user) == []


def sendmail_env(port: int) -> dict[str, str]:
    return {
        "MAILCLI_SMTP_HOST": "127.0.0.1",
        "MAILCLI_SMTP_PORT": str(port),
        "MAILCLI_SMTP_SECURITY": "none",  # the relay port: 127.0.0.1 needs no AUTH there
    }


def big_message(box: Mailbox) -> str:
    return f"From: {box.address}\nTo: {box.address}\nSubject: big\n\n" + BIG_BODY * 400


def queued(home: Path) -> list[Path]:
    return list((home / ".local" / "state" / "mailcli" / "queue").glob("*.json"))


def test_sendmail_message_over_the_size_is_final_not_queued(
    small: SmallPostfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    before = len(client_sessions(small))
    done = run_cli(
        ["sendmail", "-i", mailbox.address],
        env=sendmail_env(small.smtp_port),
        input=big_message(mailbox),
    )
    assert done.code == 69, done.stderr
    assert f"limit of {LIMIT} octets" in done.stderr
    assert queued(isolated_environment) == []
    session = next_session(small, before)
    assert "mail=" not in session, session


def test_queued_message_over_the_size_moves_to_failed(
    small: SmallPostfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    down = run_cli(
        ["sendmail", "-i", mailbox.address],
        env=sendmail_env(free_port()),  # nothing listens: queued
        input=big_message(mailbox),
    )
    assert down.code == 0, down.stderr  # queued
    ran = run_cli(["queue", "run"], env=sendmail_env(small.smtp_port))
    assert ran.code == 69, ran.stderr
    assert f"limit of {LIMIT} octets" in ran.stderr
    assert json.loads(run_cli(["queue", "list", "--json"]).stdout)["queue"] == []
    failed = isolated_environment / ".local" / "state" / "mailcli" / "queue" / "failed"
    assert len(list(failed.glob("*.eml"))) == 1


def server_announcing(size_line: str, mail_lines: list[str]) -> ScriptedServer:
    def script(conn: Conn) -> None:
        conn.send("220 scripted ESMTP")
        while line := conn.recv_line():
            verb = line.split()[0].upper()
            if verb == "EHLO":
                conn.send("250-scripted", f"250 {size_line}")
            elif verb == "MAIL":
                mail_lines.append(line)
                conn.send("250 ok")
            elif verb == "RCPT":
                conn.send("250 ok")
            elif verb == "DATA":
                conn.send("354 go on")
                while (body_line := conn.file.readline(65536)) not in (b".\r\n", b""):
                    assert body_line.endswith(b"\n")
                conn.send("250 queued")
            else:
                conn.send("221 bye")
                return

    return ScriptedServer(script)


@pytest.mark.parametrize("size_line", ["SIZE", "SIZE 0"])
def test_size_without_a_number_or_zero_means_no_limit(size_line: str) -> None:
    mail_lines: list[str] = []
    with server_announcing(size_line, mail_lines) as server:
        sender = Mailcli(Account.scripted(server, None, None))
        message = ["--from", "a@example.test", "--to", "b@example.test"]
        result = sender("send", *message, input=BIG_BODY * 400)
    assert result.code == 0, result.stderr
    assert len(mail_lines) == 1 and "SIZE=" in mail_lines[0]
