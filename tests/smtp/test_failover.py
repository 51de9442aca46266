"""Relay failover (`fallback = ["backup", ...]`): a message the account's own server
cannot take for now goes to the next account's server, exactly once, never after a 5xx
or a partial acceptance. Real Postfix (delivering into Dovecot) takes it; the servers
that fail first are a closed port and scripted servers."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Result, run_cli
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, HangUp, ScriptedServer
from tests.servers.smtpscripts import smtp_server

SUBJECT = "failover"


def relay_table(name: str, port: int, *, fallback: str = "", login: str = "") -> str:
    """[accounts.NAME] submitting to 127.0.0.1:PORT; `login` adds the user, the password
    command and STARTTLS (Postfix's submission port), else cleartext without AUTH."""
    security = "none" if not login else "starttls"
    return (
        f"[accounts.{name}]\n{fallback}{login}"
        f'[accounts.{name}.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
    )


def write_relays(config: Path, postfix: Postfix, box: Mailbox, first_port: int) -> None:
    """`first` (at FIRST_PORT, cleartext) falls back to `backup`, the box on Postfix."""
    config.write_text(
        'default_account = "first"\n'
        + relay_table("first", first_port, fallback='fallback = ["backup"]\n')
        + backup_table(postfix, box)
    )


def backup_table(postfix: Postfix, box: Mailbox, name: str = "backup", password: str = "") -> str:
    return (
        f'[accounts.{name}]\nuser = "{box.user}"\n'
        f'password_command = "echo {password or box.password}"\n'
        f'[accounts.{name}.smtp]\nhost = "127.0.0.1"\nport = {postfix.submission_port}\n'
        f'security = "starttls"\ncafile = "{postfix.certs.ca_pem}"\n'
    )


def send(box: Mailbox, *extra: str, env: dict[str, str | None] | None = None) -> Result:
    return run_cli(
        [
            "--trace",
            "send",
            "--from",
            box.address,
            "--to",
            box.address,
            *extra,
            "--subject",
            SUBJECT,
            "--body",
            "once",
        ],
        env=env,
    )


def subjects(postfix: Postfix, box: Mailbox, count: int) -> list[str]:
    paths = postfix.wait_for_delivery(box.user, count)
    return [
        str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"])
        for p in paths
    ]


def assert_postfix_got_nothing(postfix: Postfix, box: Mailbox) -> None:
    """A marker sent straight through the backup arrives alone: nothing went before it."""
    marker = run_cli(
        [
            "send",
            "-a",
            "backup",
            "--from",
            box.address,
            "--to",
            box.address,
            "--subject",
            "marker",
            "--body",
            "x",
        ]
    )
    assert marker.code == 0, marker.stderr
    assert subjects(postfix, box, 1) == ["marker"]
    assert len(postfix.messages(box.user)) == 1


@pytest.fixture
def scripted() -> Iterator[list[ScriptedServer]]:
    servers: list[ScriptedServer] = []
    yield servers
    for server in servers:
        server.stop()


def start(servers: list[ScriptedServer], server: ScriptedServer) -> int:
    server.start()
    servers.append(server)
    return server.port


def refuse_second_recipient(conn: Conn, line: str) -> None:
    conn.send("450 4.2.1 try later" if "second@" in line else "250 2.1.5 ok")


def hang_up_after_the_message(conn: Conn, line: str) -> None:
    """Takes the whole message, then the connection is lost before the reply: the server
    may have accepted it, so it must not go anywhere else."""
    conn.send("354 go ahead")
    while (raw := conn.file.readline(65536)) and raw.rstrip(b"\r\n") != b".":
        pass
    raise HangUp


TEMPORARY_FAILURES = {
    "closed port": None,
    "421 greeting": smtp_server(greeting="421 4.3.2 too busy, try later"),
    "451 to MAIL": smtp_server(answers={"MAIL": "451 4.3.0 try later"}),
    "452 to every RCPT": smtp_server(answers={"RCPT": "452 4.2.2 out of space"}),
    "421 to EHLO": smtp_server(answers={"EHLO": "421 4.3.2 shutting down", "HELO": "421 4.3.2"}),
    "454 to AUTH": smtp_server(
        ("250-scripted", "250 AUTH PLAIN LOGIN"), {"AUTH": "454 4.7.0 try again later"}
    ),
    "451 to DATA": smtp_server(answers={"DATA": "451 4.3.0 try later"}),
    "452 to the final dot": smtp_server(queued="452 4.3.1 insufficient system storage"),
}


@pytest.mark.parametrize("failure", list(TEMPORARY_FAILURES))
def test_a_temporary_failure_moves_on_and_the_message_arrives_once(
    failure: str,
    config_file: Path,
    postfix: Postfix,
    mailbox: Mailbox,
    scripted: list[ScriptedServer],
) -> None:
    script = TEMPORARY_FAILURES[failure]
    port = free_port() if script is None else start(scripted, ScriptedServer(script))
    write_relays(config_file, postfix, mailbox, port)
    if failure == "454 to AUTH":  # the first account logs in too
        login = '[accounts.first]\nuser = "someone"\npassword_command = "echo pw"\n'
        config_file.write_text(config_file.read_text().replace("[accounts.first]\n", login))
    result = send(mailbox, "--json")
    assert result.code == 0, result.stderr
    assert f"== trying fallback backup (127.0.0.1:{postfix.submission_port}) after: " in (
        result.stderr
    )
    after = next(line for line in result.stderr.splitlines() if "== trying fallback" in line)
    assert ("refused" if script is None else failure.split()[0]) in after.split(" after: ")[1]
    document = json.loads(result.stdout)
    assert document["relay"] == "backup"
    assert subjects(postfix, mailbox, 1) == [SUBJECT]
    assert len(postfix.messages(mailbox.user)) == 1
    assert "Traceback" not in result.stderr


PERMANENT_OR_PARTIAL = {
    "550 to MAIL": (smtp_server(answers={"MAIL": "550 5.7.1 sender refused"}), 69),
    "one RCPT accepted, one 450": (smtp_server(answers={"RCPT": refuse_second_recipient}), 75),
    "554 greeting": (smtp_server(greeting="554 5.3.2 no service for you"), 69),
    "connection lost after the message": (
        smtp_server(answers={"DATA": hang_up_after_the_message}),
        75,
    ),
}


@pytest.mark.parametrize("answer", list(PERMANENT_OR_PARTIAL))
def test_a_5xx_or_a_partial_acceptance_never_moves_on(
    answer: str,
    config_file: Path,
    postfix: Postfix,
    mailbox: Mailbox,
    scripted: list[ScriptedServer],
) -> None:
    script, status = PERMANENT_OR_PARTIAL[answer]
    write_relays(config_file, postfix, mailbox, start(scripted, ScriptedServer(script)))
    result = send(mailbox, "--to", "second@example.test")
    assert result.code == status, result.stderr
    assert "trying fallback" not in result.stderr
    assert str(postfix.submission_port) not in result.stderr
    assert_postfix_got_nothing(postfix, mailbox)


def test_an_untrusted_certificate_moves_on(
    config_file: Path, postfix: Postfix, mailbox: Mailbox
) -> None:
    """Postfix's SMTPS port without its CA: the TLS failure (77) sends nothing there."""
    first = relay_table("first", postfix.smtps_port, fallback='fallback = ["backup"]\n')
    first = first.replace('security = "none"', 'security = "tls"')
    config_file.write_text('default_account = "first"\n' + first + backup_table(postfix, mailbox))
    result = send(mailbox)
    assert result.code == 0, result.stderr
    assert "after: TLS certificate of 127.0.0.1:" in result.stderr
    assert f"mailcli: sent through fallback backup (127.0.0.1:{postfix.submission_port})" in (
        result.stderr
    )
    assert subjects(postfix, mailbox, 1) == [SUBJECT]
    assert len(postfix.messages(mailbox.user)) == 1


def test_fallbacks_are_not_followed_further(
    config_file: Path, postfix: Postfix, mailbox: Mailbox, scripted: list[ScriptedServer]
) -> None:
    """first -> middle; middle's own fallbacks (first again, and Postfix) are not tried."""
    busy = start(scripted, ScriptedServer(smtp_server(greeting="421 4.3.2 busy")))
    config_file.write_text(
        'default_account = "first"\n'
        + relay_table("first", free_port(), fallback='fallback = ["middle"]\n')
        + relay_table("middle", busy, fallback='fallback = ["first", "backup"]\n')
        + backup_table(postfix, mailbox)
    )
    result = send(mailbox)
    assert result.code == 75, result.stderr
    assert result.stderr.count("== trying fallback") == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("mailcli: error:")]
    assert len(error) == 1 and "no relay took the message: first: " in error[0], result.stderr
    assert "middle: " in error[0] and "421 4.3.2 busy" in error[0]
    assert_postfix_got_nothing(postfix, mailbox)


def test_a_refused_login_on_a_fallback_stops_there(
    config_file: Path, postfix: Postfix, mailbox: Mailbox
) -> None:
    """A wrong password is a setting to fix, not a server down: 77, the next not tried."""
    config_file.write_text(
        'default_account = "first"\n'
        + relay_table("first", free_port(), fallback='fallback = ["wrong", "backup"]\n')
        + backup_table(postfix, mailbox, "wrong", password="not-the-password")
        + backup_table(postfix, mailbox)
    )
    result = send(mailbox)
    assert result.code == 77, result.stderr
    assert result.stderr.count("== trying fallback") == 1
    assert_postfix_got_nothing(postfix, mailbox)


def test_the_variables_naming_the_first_server_and_its_password_stay_with_it(
    config_file: Path, postfix: Postfix, mailbox: Mailbox
) -> None:
    """MAILCLI_SMTP_PORT and MAILCLI_PASSWORD are the first server's: the fallback uses
    its own port and password_command (with either it would fail: a closed port, 77)."""
    write_relays(config_file, postfix, mailbox, postfix.smtp_port)
    closed = str(free_port())
    result = send(
        mailbox, env={"MAILCLI_SMTP_PORT": closed, "MAILCLI_PASSWORD": "the-first-secret"}
    )
    assert result.code == 0, result.stderr
    assert f"after: connection to 127.0.0.1:{closed} refused" in result.stderr
    assert subjects(postfix, mailbox, 1) == [SUBJECT]


def test_a_fallback_naming_an_unknown_account_or_itself_is_78(config_file: Path) -> None:
    base = '[accounts.a.smtp]\nhost = "127.0.0.1"\n[accounts.b.smtp]\nhost = "127.0.0.1"\n'
    for fallback, problem in (
        ('["nobody"]', "'nobody' names no [accounts.nobody]"),
        ('["a"]', "'a' is this account itself"),
        ('["b", "b"]', "names an account twice"),
        ('"b"', "must be a list of account names"),
    ):
        config_file.write_text(f"[accounts.a]\nfallback = {fallback}\n{base}")
        result = run_cli(["account", "list"])
        assert result.code == 78, (fallback, result)
        assert result.stderr.startswith("mailcli: error: "), result.stderr
        assert f"accounts.a.fallback: {problem}" in result.stderr
        assert result.stderr.count("\n") <= 2  # the line and at most a hint
