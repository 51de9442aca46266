"""Delivery status notifications (RFC 3461) on `send`: --dsn-notify, --dsn-return,
--envid and the account's dsn_notify/dsn_return keys.

Postfix offers DSN: what it received shows in the success report it mails back to the
sender (tests/servers/dsn.py). A scripted server records the exact parameters (the
xtext encoding, lock-step RCPTs) and plays one that does not offer DSN: the message
goes anyway, with one warning and `"dsn": "not offered"` in --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailcli.errors import ExitStatus
from mailcli.smtp.dsn import xtext
from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.dsn import success_report
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpscripts import smtp_server

ENVID = "batch 7+x=1"  # a space, "+" and "=": each must be xtext-encoded
DSN_EHLO = ("250-dsn.example.test", "250-8BITMIME", "250 DSN")
NO_DSN_EHLO = ("250-plain.example.test", "250 8BITMIME")
WARNING = "mailcli: warning: the server does not offer DSN: sent without the notification requests"


def send(account: Account, *args: str) -> Result:
    body = ("--from", "ann@example.test", "--subject", "dsn", "--body", "hello")
    return Mailcli(account)("--trace", "send", *body, *args)


def test_postfix_reports_success_with_the_envid_and_headers_only(
    postfix: Postfix, mailbox: Mailbox
) -> None:
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    result = send(
        account,
        "--envelope-from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--dsn-notify",
        "success,failure",
        "--dsn-return",
        "headers",
        "--envid",
        ENVID,
        "--json",
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["dsn"] == "requested"
    (mail,) = [line for line in result.stderr.splitlines() if line.startswith("~> mail FROM")]
    assert mail.endswith(" RET=HDRS ENVID=batch+207+2Bx+3D1")
    orcpt = f"ORCPT=rfc822;{mailbox.address}"
    assert f"~> rcpt TO:<{mailbox.address}> NOTIFY=SUCCESS,FAILURE {orcpt}" in result.stderr
    report = success_report(postfix, mailbox)
    assert report.envid == ENVID
    assert report.original_recipients == [f"rfc822;{mailbox.address}"]
    assert report.actions == ["delivered"]
    assert report.returned == "text/rfc822-headers"  # RET=HDRS


def test_the_account_keys_are_the_defaults(
    postfix: Postfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    config = isolated_environment / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[accounts.t]\ndsn_notify = "success"\ndsn_return = "full"\n')
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    result = send(account, "--envelope-from", mailbox.address, "--to", mailbox.address)
    assert result.code == 0, result.stderr
    (mail,) = [line for line in result.stderr.splitlines() if line.startswith("~> mail FROM")]
    assert mail.endswith(" RET=FULL") and "ENVID" not in mail
    rcpt = f"~> rcpt TO:<{mailbox.address}> NOTIFY=SUCCESS ORCPT=rfc822;{mailbox.address}"
    assert rcpt in result.stderr
    report = success_report(postfix, mailbox)  # Postfix returns headers only on success
    assert report.envid is None and report.actions == ["delivered"]


def test_exact_parameters_in_lock_step() -> None:
    with ScriptedServer(smtp_server(DSN_EHLO)) as server:
        result = send(
            Account(server.host, server.port, security="none"),
            "--to",
            "bob@example.test,carol@example.test",
            "--dsn-notify",
            "delay,FAILURE",
            "--envid",
            ENVID,
        )
    assert result.code == 0, result.stderr
    assert server.received[1] == "mail FROM:<ann@example.test> ENVID=batch+207+2Bx+3D1"
    assert server.received[2:4] == [
        "rcpt TO:<bob@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.test",
        "rcpt TO:<carol@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;carol@example.test",
    ]


def test_a_server_without_dsn_gets_the_message_and_one_warning() -> None:
    with ScriptedServer(smtp_server(NO_DSN_EHLO)) as server:
        account = Account(server.host, server.port, security="none")
        result = Mailcli(account)(
            "send",
            "--from",
            "ann@example.test",
            "--to",
            "bob@example.test",
            "--body",
            "hi",
            "--dsn-notify",
            "success",
            "--dsn-return",
            "full",
            "--envid",
            "e1",
            "--json",
        )
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines() == [WARNING]
    document = json.loads(result.stdout)
    assert document["dsn"] == "not offered" and document["accepted"] == ["bob@example.test"]
    assert "hi" in server.received  # the message went
    envelope = [line for line in server.received if line.split(" ")[0] in ("mail", "rcpt")]
    assert envelope == ["mail FROM:<ann@example.test>", "rcpt TO:<bob@example.test>"]


def test_without_a_request_nothing_changes() -> None:
    with ScriptedServer(smtp_server(DSN_EHLO)) as server:
        result = send(Account(server.host, server.port, security="none"), "--to", "b@example.test")
    assert result.code == 0, result.stderr
    assert server.received[1:3] == ["mail FROM:<ann@example.test>", "rcpt TO:<b@example.test>"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--dsn-notify", "success,sometimes"), "unknown keyword 'sometimes'"),
        (("--dsn-notify", "never,failure"), "`never` cannot be combined"),
        (("--dsn-notify", ""), "unknown keyword ''"),
        (("--dsn-return", "body"), "must be full or headers"),
        (("--envid", "caf\u00e9"), "printable ASCII"),
        (("--envid", "x" * 101), "printable ASCII"),
    ],
)
def test_bad_requests_are_usage_errors(args: tuple[str, ...], says: str) -> None:
    result = Mailcli(Account("127.0.0.1", 9, security="none"))(
        "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x", *args
    )
    assert result.code == ExitStatus.USAGE
    (line,) = result.stderr.splitlines()
    assert line.startswith("mailcli: error: ") and says in line


def test_a_bad_account_key_is_a_config_error(isolated_environment: Path) -> None:
    config = isolated_environment / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[accounts.t]\ndsn_notify = "always"\n')
    result = Mailcli(Account("127.0.0.1", 9, security="none"))(
        "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x"
    )
    assert result.code == ExitStatus.CONFIG
    assert "accounts.t.dsn_notify" in result.stderr and "'always'" in result.stderr


def test_xtext() -> None:
    assert xtext("a+b=c d\u00e9~!") == "a+2Bb+3Dc+20d+C3+A9~!"
