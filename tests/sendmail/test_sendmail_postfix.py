"""sendmail mode and the retry spool through the throwaway Postfix into Dovecot, in a
cron-like environment: `env -i`-style variables, no TTY, no D-Bus, the password from
`password_command`, mailcli invoked through a link named `sendmail`."""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.servers.certs import Certs
from tests.servers.cronhost import CronHost
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix

CRON_OUTPUT = b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> nightly\n\nok\n"


@pytest.fixture
def cron(tmp_path: Path, postfix: Postfix, certs: Certs, mailbox: Mailbox) -> CronHost:
    return CronHost(tmp_path, postfix, certs, mailbox)


def messages(postfix: Postfix, box: Mailbox, count: int) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in postfix.wait_for_delivery(box.user, count)
    ]


def test_debian_cron_command_line_through_a_sendmail_link(
    cron: CronHost, postfix: Postfix, mailbox: Mailbox
) -> None:
    done = cron.sendmail("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root", input=CRON_OUTPUT)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    (message,) = messages(postfix, mailbox, 1)
    assert message["Return-Path"] == f"<{mailbox.address}>"  # the account's from
    assert message["Delivered-To"] == mailbox.address  # root -> alias
    assert message["Subject"] == "Cron <root@host> nightly"
    # The header is the message's own; Postfix (not mailcli) qualifies bare names in it.
    assert message["From"].addresses[0].username == "root"
    assert message["Message-ID"] and message["Date"]


def test_cronie_command_line(cron: CronHost, postfix: Postfix, mailbox: Mailbox) -> None:
    done = cron.sendmail(
        "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root", input=CRON_OUTPUT
    )
    assert done.returncode == 0, done.stderr
    (message,) = messages(postfix, mailbox, 1)
    assert message["Return-Path"] == "<root@example.test>"  # -f root, qualified


def test_t_with_bcc_removed_and_null_sender(
    cron: CronHost,
    postfix: Postfix,
    dovecot: Dovecot,
    mailbox: Mailbox,
) -> None:
    dovecot.add_user(mailbox.user + "x", "pw")
    raw = (
        f"From: Reports <reports@example.test>\nTo: {mailbox.address}\n"
        f"Bcc: {mailbox.user}x\nSubject: report\n\nnumbers\n"
    ).encode()
    done = cron.sendmail("-t", "-i", "-f", "<>", input=raw)
    assert done.returncode == 0, done.stderr
    copies = messages(postfix, mailbox, 1) + [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in postfix.wait_for_delivery(mailbox.user + "x")
    ]
    for copy in copies:
        assert "Bcc" not in copy
        assert copy["Return-Path"] == "<>"


def test_server_down_queues_then_queue_run_delivers_once(
    cron: CronHost, postfix: Postfix, mailbox: Mailbox
) -> None:
    cron.write_config(free_port())  # nothing listens there: connection refused
    done = cron.sendmail("-i", "root", input=CRON_OUTPUT)
    assert done.returncode == 0, done.stderr  # durably queued: the caller must not resend
    err = done.stderr.decode()
    assert err.startswith("mailcli: queued: ") and err.count("\n") == 1, err
    assert "refused" in err and "`mailcli queue run` will retry" in err
    listed = json.loads(cron.mailcli("queue", "list", "--json").stdout)["queue"]
    assert [entry["recipients"] for entry in listed] == [[mailbox.address]]
    files = sorted(path.name for path in cron.queue_dir().iterdir())
    assert len([f for f in files if f.endswith(".eml")]) == 1
    assert (cron.queue_dir().stat().st_mode & 0o777) == 0o700
    assert all(
        (cron.queue_dir() / f).stat().st_mode & 0o777 == 0o600
        for f in files
        if not f.startswith(".lock")
    )

    again = cron.mailcli("queue", "run")  # still down: stays, attempts counted
    assert again.returncode == 75
    # The delivery tried by sendmail was attempt 1, this run's is attempt 2.
    assert json.loads(cron.mailcli("queue", "list", "--json").stdout)["queue"][0]["attempts"] == 2

    cron.write_config(postfix.submission_port)
    ran = cron.mailcli("queue", "run")
    assert ran.returncode == 0, ran.stderr
    # Postfix answers BDAT "Ok: N bytes queued as ID", the final dot "Ok: queued as ID"
    assert re.search(rb"\tdelivered\t250 2\.0\.0 Ok: (\d+ bytes )?queued as ", ran.stdout)
    assert json.loads(cron.mailcli("queue", "list", "--json").stdout)["queue"] == []
    assert len(messages(postfix, mailbox, 1)) == 1
    assert cron.mailcli("queue", "run").returncode == 0  # nothing left: nothing sent twice
    assert len(postfix.messages(mailbox.user)) == 1


def test_permanently_refused_queued_message_moves_to_failed(
    cron: CronHost, postfix: Postfix
) -> None:
    cron.write_config(free_port())
    assert cron.sendmail("-i", postfix.refused_recipient, input=CRON_OUTPUT).returncode == 0
    cron.write_config(postfix.submission_port)
    ran = cron.mailcli("queue", "run")
    assert ran.returncode == 69
    assert b"refused permanently" in ran.stderr and b"550 5.1.1" in ran.stderr
    failed = list((cron.queue_dir() / "failed").glob("*.eml"))
    assert len(failed) == 1 and b"Cron <root@host> nightly" in failed[0].read_bytes()
    assert json.loads(cron.mailcli("queue", "list", "--json").stdout)["queue"] == []


def test_permanent_refusal_at_once_is_not_queued(cron: CronHost, postfix: Postfix) -> None:
    done = cron.sendmail("-i", postfix.refused_recipient, input=CRON_OUTPUT)
    assert done.returncode == 67
    assert b"refused permanently: 550 5.1.1" in done.stderr
    assert not cron.queue_dir().exists() or not list(cron.queue_dir().glob("*.json"))


def test_concurrent_queue_runs_deliver_each_message_once(
    cron: CronHost, postfix: Postfix, mailbox: Mailbox
) -> None:
    cron.write_config(free_port())
    for number in range(5):
        raw = CRON_OUTPUT.replace(b"nightly", f"run {number}".encode())
        assert cron.sendmail("-i", "root", input=raw).returncode == 0
    cron.write_config(postfix.submission_port)
    command = [sys.executable, "-m", "mailcli", "queue", "run"]
    runners = [
        subprocess.Popen(command, env=cron.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    codes = sorted(runner.wait(timeout=60) for runner in runners)
    assert codes[0] == 0 and codes[1] in (0, 75)  # the loser found the lock, or nothing left
    delivered = messages(postfix, mailbox, 5)
    assert sorted(str(m["Subject"]) for m in delivered) == [
        f"Cron <root@host> run {n}" for n in range(5)
    ]
    assert len(postfix.messages(mailbox.user)) == 5


def test_queue_remove(cron: CronHost) -> None:
    cron.write_config(free_port())
    assert cron.sendmail("-i", "root", input=CRON_OUTPUT).returncode == 0
    (entry,) = json.loads(cron.mailcli("queue", "list", "--json").stdout)["queue"]
    assert cron.mailcli("queue", "remove", entry["id"]).returncode == 0
    assert cron.mailcli("queue", "remove", entry["id"]).returncode == 66
    assert json.loads(cron.mailcli("queue", "list", "--json").stdout)["queue"] == []
