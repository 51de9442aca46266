"""Relay failover in sendmail mode: with every relay down the message is queued under the
account (not a fallback), `queue run` tries the fallbacks on each run and the entry stays
until one of them takes it; delivered exactly once into Dovecot through the real Postfix."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Result, queue_dir, run_cli
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, ScriptedServer

CRON = "From: cron@example.test\nTo: {to}\nSubject: nightly {number}\n\nok\n"


def write_config(config: Path, box: Mailbox, first: int, backup: int, ca: Path) -> None:
    """`first` (cleartext at FIRST, no AUTH) falls back to `backup` (STARTTLS and AUTH
    as the box at BACKUP: Postfix's submission port, or a closed one)."""
    config.write_text(
        'default_account = "first"\n'
        f'[accounts.first]\nfallback = ["backup"]\n'
        f'[accounts.first.smtp]\nhost = "127.0.0.1"\nport = {first}\nsecurity = "none"\n'
        f'[accounts.backup]\nuser = "{box.user}"\npassword_command = "echo {box.password}"\n'
        f'[accounts.backup.smtp]\nhost = "127.0.0.1"\nport = {backup}\nsecurity = "starttls"\n'
        f'cafile = "{ca}"\n'
    )


def sendmail(box: Mailbox, number: int = 0) -> Result:
    return run_cli(
        ["sendmail", "-i", box.address], input=CRON.format(to=box.address, number=number)
    )


def queued() -> list[dict[str, Any]]:
    listed = run_cli(["queue", "list", "--json"])
    assert listed.code == 0, listed.stderr
    entries: list[dict[str, Any]] = json.loads(listed.stdout)["queue"]
    return entries


def subjects(postfix: Postfix, box: Mailbox, count: int) -> list[str]:
    return sorted(
        str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"])
        for p in postfix.wait_for_delivery(box.user, count)
    )


@pytest.fixture
def busy_first() -> Iterator[tuple[ScriptedServer, list[int]]]:
    """A first relay that answers every connection with 421, counting them."""
    connections: list[int] = []

    def script(conn: Conn) -> None:
        connections.append(1)
        conn.send("421 4.3.2 too busy, try later")

    with ScriptedServer(script) as server:
        yield server, connections


def test_every_relay_down_queues_under_the_account_then_a_run_delivers_once(
    config_file: Path, postfix: Postfix, mailbox: Mailbox
) -> None:
    first, backup = free_port(), free_port()  # nothing listens on either
    write_config(config_file, mailbox, first, backup, postfix.certs.ca_pem)
    done = sendmail(mailbox)
    assert done.code == 0, done.stderr  # queued: the queue owns it now
    assert done.stderr.startswith("mailcli: queued: ") and done.stderr.count("\n") == 1
    assert "no relay took the message: first: " in done.stderr and "backup: " in done.stderr
    (entry,) = queued()
    assert entry["account"] == "first" and entry["recipients"] == [mailbox.address]

    again = run_cli(["queue", "run"])  # both still down: the entry stays
    assert again.code == 75, again.stderr
    (entry,) = queued()
    assert entry["attempts"] == 2

    write_config(config_file, mailbox, first, postfix.submission_port, postfix.certs.ca_pem)
    ran = run_cli(["queue", "run", "--json"])
    assert ran.code == 0, ran.stderr
    (outcome,) = json.loads(ran.stdout)["outcomes"]
    assert outcome["status"] == "delivered"
    assert outcome["relay"] == "backup"
    assert queued() == []
    assert not list(queue_dir(config_file.parents[2]).glob("*.eml"))
    assert subjects(postfix, mailbox, 1) == ["nightly 0"]
    assert run_cli(["queue", "run"]).code == 0  # nothing left: nothing sent twice
    assert len(postfix.messages(mailbox.user)) == 1


def test_sendmail_goes_through_the_fallback_at_once_and_says_nothing(
    config_file: Path, postfix: Postfix, mailbox: Mailbox
) -> None:
    write_config(config_file, mailbox, free_port(), postfix.submission_port, postfix.certs.ca_pem)
    done = sendmail(mailbox)
    assert (done.code, done.stdout, done.stderr) == (0, "", "")  # cron mails any output
    assert queued() == []
    assert subjects(postfix, mailbox, 1) == ["nightly 0"]


def test_a_queue_run_tries_a_relay_down_once_and_sends_the_rest_through_the_next(
    config_file: Path,
    postfix: Postfix,
    mailbox: Mailbox,
    busy_first: tuple[ScriptedServer, list[int]],
) -> None:
    server, connections = busy_first
    write_config(config_file, mailbox, server.port, free_port(), postfix.certs.ca_pem)
    for number in range(3):
        assert sendmail(mailbox, number).code == 0
    assert len(queued()) == 3
    write_config(config_file, mailbox, server.port, postfix.submission_port, postfix.certs.ca_pem)
    before = len(connections)
    ran = run_cli(["--trace", "queue", "run"])
    assert ran.code == 0, ran.stderr
    assert len(connections) - before == 1  # down for the rest of the run
    assert ran.stderr.count("== trying fallback backup") == 1
    assert "after: the connection deferred by the server: 421 4.3.2" in ran.stderr
    assert queued() == []
    assert subjects(postfix, mailbox, 3) == [f"nightly {n}" for n in range(3)]
    assert len(postfix.messages(mailbox.user)) == 3


def test_a_refused_login_on_the_fallback_keeps_the_message_queued(
    config_file: Path, postfix: Postfix, mailbox: Mailbox
) -> None:
    """A wrong password is not a server down: the chain stops there (77), and sendmail
    keeps the message for a run after the password is fixed."""
    wrong = dataclasses.replace(mailbox, password="not-the-password")
    write_config(config_file, wrong, free_port(), postfix.submission_port, postfix.certs.ca_pem)
    done = sendmail(mailbox)
    assert done.code == 0 and done.stderr.startswith("mailcli: queued: "), done.stderr
    assert "535" in done.stderr and "no relay took" not in done.stderr
    (entry,) = queued()
    assert entry["account"] == "first"
    write_config(config_file, mailbox, free_port(), postfix.submission_port, postfix.certs.ca_pem)
    ran = run_cli(["queue", "run"])
    assert ran.code == 0, ran.stderr
    assert subjects(postfix, mailbox, 1) == ["nightly 0"]
    assert queued() == []
