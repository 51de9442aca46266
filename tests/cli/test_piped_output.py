"""The README's promise for piped output: tab-separated lines, an empty cell shown as
`-`, never as nothing. In bash `IFS=$'\\t' read` merges consecutive tabs, so one empty
cell shifts every later column. Every command that prints a table is run piped here
against the real test servers, and every field of every line must be non-empty.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from mailcli.cli.main import cli
from tests.helpers import Mailcli, Result, run_cli, write_config, write_cron_config
from tests.servers.accounts import Account
from tests.servers.authserver import AuthServer
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]

# Commands whose stdout is not a table: message bytes, a session, nothing, or a script.
NOT_TABLES = {
    "retr",
    "top",
    "shell",
    "fetch",
    "sendmail",
    "completion",
    "queue remove",
    "account add",
    "account remove",
    "password set",
    "password delete",
    "oauth login",  # people's messages on stderr only
    "oauth logout",
    "oauth token",  # the token alone, a passwordeval's input
}


def empty_fields(stdout: str) -> list[str]:
    """The lines of piped output that hold an empty field."""
    return [line for line in stdout.splitlines() if "" in line.split("\t")]


def assert_piped_table(result: Result, *, codes: tuple[int, ...] = (0,)) -> list[list[str]]:
    assert result.code in codes, result.stderr
    assert result.stdout, "the command printed no table"
    assert result.stdout.endswith("\n")
    assert empty_fields(result.stdout) == []
    return [line.split("\t") for line in result.stdout.splitlines()]


def command_names(group: click.Group, prefix: str = "") -> set[str]:
    names = set()
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            names |= command_names(command, f"{prefix}{name} ")
        else:
            names.add(prefix + name)
    return names


TESTED = {
    "stat",
    "list",
    "uidl",
    "capa",
    "dele",
    "rset",
    "check",
    "send",
    "queue list",
    "queue run",
    "account list",
    "account show",
    "account which",
    "password where",
    "oauth status",
    "account import",
}


def test_every_table_printing_command_is_covered_here() -> None:
    untested = command_names(cli) - TESTED - NOT_TABLES
    assert not untested, f"add the piped-output test of {sorted(untested)} to this file"


def test_empty_field_detection_can_fail() -> None:
    assert empty_fields("a\t\tb\n") == ["a\t\tb"]
    assert empty_fields("a\tb\t\n") == ["a\tb\t"]
    assert empty_fields("a\t-\tb\n") == []


@pytest.fixture
def pop3(mailcli: Mailcli, mailbox: Mailbox) -> Callable[..., Result]:
    """POP3 commands against a mailbox whose message has no From, Date or Subject."""
    mailbox.drop(b"X-Nothing: here\n\nbody\n", b"From: a@example.test\nSubject: s\n\nbody\n")
    return mailcli


def test_pop3_commands(pop3: Callable[..., Result]) -> None:
    assert assert_piped_table(pop3("stat"))[0][0] == "2"
    assert assert_piped_table(pop3("uidl"))[0][0] == "1"
    assert len(assert_piped_table(pop3("list"))) == 2
    listed = assert_piped_table(pop3("list", "--headers"))
    assert listed[0][3:] == ["-", "-", "-"]  # no From, Date, Subject
    assert listed[1][3] == "a@example.test" and listed[1][4] == "-"
    documents = json.loads(pop3("list", "--headers", "--json").stdout)["messages"]
    assert documents[0]["from"] == "" and documents[0]["date"] == ""  # JSON: the real value
    capabilities = assert_piped_table(pop3("capa"))
    assert ["UIDL", "-"] in capabilities  # a capability without arguments
    assert json.loads(pop3("capa", "--json").stdout)["capabilities"]["UIDL"] == []
    assert len(assert_piped_table(pop3("dele", "1", "--dry-run"))) == 1
    assert assert_piped_table(pop3("rset"))[0][0] == "RSET"
    assert assert_piped_table(pop3("check", "pop3", "--login"))


def test_send_and_check_smtp(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    server.refuse_rcpt = {"gone@example.test"}
    base = Account.smtpd(server, security="none").args()
    recipients = ["--to", "b@example.test", "--to", "gone@example.test"]
    sent = run_cli(["send", *base, "--from", "a@example.test", *recipients, "--body", "x"])
    rows = assert_piped_table(sent, codes=(67,))
    assert ["b@example.test", "accepted", "-"] in rows
    assert rows[-1][:2] == ["(message)", "sent"]
    assert assert_piped_table(run_cli(["check", "smtp", *base]), codes=(0, 69))


CRON_LOGIN = 'user = "cron"\npassword_command = "echo pw"\n'


def test_accounts_passwords_and_the_queue(isolated_environment: Path) -> None:
    write_cron_config(isolated_environment, free_port(), extra=CRON_LOGIN)  # nobody listens
    rows = assert_piped_table(run_cli(["account", "list"]))
    assert rows[0][0] == "cron" and rows[0][-1] == "-"  # no POP3 host
    assert assert_piped_table(run_cli(["account", "show"]))
    which = assert_piped_table(run_cli(["account", "which", "a@x.example"]))
    assert which[1] == ["account", "cron"]
    where = assert_piped_table(run_cli(["password", "where"]))
    assert any(row[-1] == "-" for row in where)  # the sources not used
    queued = run_cli(["sendmail", "-i", "root@example.test"], input="Subject: q\n\nbody\n")
    assert queued.code == 0, queued.stderr  # queued
    assert len(assert_piped_table(run_cli(["queue", "list"]))) == 1
    assert assert_piped_table(run_cli(["queue", "run"]), codes=(75,))[0][1] == "deferred"


def test_oauth_status(config_file: Path, auth_server: AuthServer) -> None:
    from tests.servers.oauthlogin import browser_login

    write_config(config_file, auth_server)
    logged_out = dict(assert_piped_table(run_cli(["oauth", "status"])))
    assert logged_out["logged_in"] == "no" and logged_out["identity"] == "-"
    assert browser_login()[0] == 0
    logged_in = dict(assert_piped_table(run_cli(["oauth", "status"])))
    assert logged_in["logged_in"] == "yes" and logged_in["scopes"] == "mail"


IMPORTED_RC = "account a\nhost smtp.example.org\nfrom a@example.org\ntimeout 30\n"


def test_account_import(tmp_path: Path, config_file: Path) -> None:
    """Not a table: the TOML a dry run would write is the data (stdout), each setting
    left out one `FILE:LINE: ...` line on stderr, and nothing decorated on either."""
    rc = tmp_path / "msmtprc"
    rc.write_text(IMPORTED_RC)
    dry = run_cli(["account", "import", "--dry-run", str(rc)])
    assert dry.code == 0, dry.stderr
    assert tomllib.loads(dry.stdout)["accounts"]["a"]["from"] == "a@example.org"
    assert dry.stdout == dry.stdout.lstrip() and dry.stdout.endswith("\n")
    left_out = f"mailcli: warning: not imported: {rc}:4: a: timeout: "
    assert [line for line in dry.stderr.splitlines() if line.startswith(left_out)] != []
    assert "would import accounts: a" in dry.stderr
    for output in (dry.stdout, dry.stderr):
        assert "\x1b" not in output and not set(output) & set("\u2500\u2501\u2502\u2503")
    as_json = json.loads(run_cli(["account", "import", "--json", "--dry-run", str(rc)]).stdout)
    assert as_json["toml"] == dry.stdout and as_json["unmapped"][0]["command"] == "timeout"
    done = run_cli(["account", "import", str(rc)])
    assert (done.code, done.stdout) == (0, "")  # the data went to the config file
    assert left_out in done.stderr and "imported accounts: a" in done.stderr
