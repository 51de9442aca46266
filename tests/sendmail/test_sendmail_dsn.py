"""sendmail's -N, -R and -V (RFC 3461 notifications, as mutt passes -N for its
dsn_notify): honoured on immediate delivery, kept with a queued entry until a queue
run sends it, refused with 64 when malformed. The evidence is the success report the
real Postfix mails back to the sender (tests/servers/dsn.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailcli.errors import ExitStatus
from mailcli.sendmail.entry import entry_json, parse_entry
from tests.helpers import queue_dir, run_cli
from tests.servers.dsn import success_report
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpscripts import smtp_server

WARNING = "mailcli: warning: the server does not offer DSN: sent without the notification requests"


def env(port: int) -> dict[str, str]:
    return {
        "MAILCLI_SMTP_HOST": "127.0.0.1",
        "MAILCLI_SMTP_PORT": str(port),
        "MAILCLI_SMTP_SECURITY": "none",
    }


def sendmail(port: int, box: Mailbox, *options: str) -> tuple[int, str]:
    message = f"From: {box.address}\nTo: {box.address}\nSubject: dsn\n\nbody\n"
    args = ["sendmail", "-i", "-f", box.address, *options, box.address]
    result = run_cli(args, env=env(port), input=message)
    return result.code, result.stderr


def test_n_r_v_reach_postfix(postfix: Postfix, mailbox: Mailbox) -> None:
    code, stderr = sendmail(postfix.smtp_port, mailbox, "-N", "success,failure", "-Rhdrs", "-VJ 1")
    assert (code, stderr) == (0, "")
    report = success_report(postfix, mailbox)
    assert report.envid == "J 1"
    assert report.original_recipients == [f"rfc822;{mailbox.address}"]
    assert report.returned == "text/rfc822-headers"


def test_a_queued_entry_keeps_them_until_the_queue_run(
    postfix: Postfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    code, stderr = sendmail(free_port(), mailbox, "-Nsuccess", "-R", "full", "-V", "Q+1")
    assert code == 0 and "queued" in stderr
    (meta,) = queue_dir(isolated_environment).glob("*.json")
    entry = json.loads(meta.read_text())
    assert (entry["dsn_notify"], entry["dsn_return"], entry["envid"]) == (
        ["success"],
        "full",
        "Q+1",
    )
    ran = run_cli(["queue", "run", "--json"], env=env(postfix.smtp_port))
    assert ran.code == 0, ran.stderr
    (outcome,) = json.loads(ran.stdout)["outcomes"]
    assert (outcome["status"], outcome["dsn"]) == ("delivered", "requested")
    assert success_report(postfix, mailbox).envid == "Q+1"


def test_a_server_without_dsn_gets_the_message_and_one_warning(mailbox: Mailbox) -> None:
    with ScriptedServer(smtp_server(("250-plain.example.test", "250 8BITMIME"))) as server:
        code, stderr = sendmail(server.port, mailbox, "-N", "delay")
    assert (code, stderr.splitlines()) == (0, [WARNING])
    assert "body" in server.received
    assert f"rcpt TO:<{mailbox.address}>" in server.received


def test_a_queue_run_to_a_server_without_dsn_says_so(mailbox: Mailbox) -> None:
    code, stderr = sendmail(free_port(), mailbox, "-N", "failure")
    assert code == 0 and "queued" in stderr
    with ScriptedServer(smtp_server(("250-plain.example.test", "250 8BITMIME"))) as server:
        ran = run_cli(["queue", "run", "--json"], env=env(server.port))
    assert ran.code == 0, ran.stderr
    (outcome,) = json.loads(ran.stdout)["outcomes"]
    assert (outcome["status"], outcome["dsn"]) == ("delivered", "not offered")
    without = "the server does not offer DSN: sent without them"
    assert ran.stderr.splitlines() == [f"mailcli: warning: {outcome['id']}: {without}"]
    assert "body" in server.received


@pytest.mark.parametrize(
    "options", [("-N", "bounce"), ("-Nnever,delay",), ("-R", "everything"), ("-V", "\u00e9")]
)
def test_malformed_values_are_usage_errors(
    options: tuple[str, ...], mailbox: Mailbox, isolated_environment: Path
) -> None:
    code, stderr = sendmail(free_port(), mailbox, *options)
    assert code == ExitStatus.USAGE
    (line,) = stderr.splitlines()
    assert line.startswith("mailcli: error: sendmail: -")
    assert not list(queue_dir(isolated_environment).glob("*.json"))  # refused, not queued


def test_entries_with_and_without_the_dsn_fields_read_back() -> None:
    old: dict[str, object] = {"id": "e1", "created": 1.0, "account": None}
    old |= {"envelope_from": "a@example.test", "recipients": ["b@example.test"]}
    assert parse_entry("e1", json.dumps(old)).dsn is None
    new = {**old, "dsn_notify": ["success", "delay"], "dsn_return": "headers", "envid": "x"}
    entry = parse_entry("e1", json.dumps(new))
    assert entry.dsn is not None and entry.dsn.notify == ("success", "delay")
    assert parse_entry("e1", entry_json(entry).decode()) == entry
    with pytest.raises(ValueError, match="dsn_notify"):
        parse_entry("e1", json.dumps({**old, "dsn_notify": ["sometimes"]}))
