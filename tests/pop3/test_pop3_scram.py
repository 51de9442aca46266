"""POP3 SASL (RFC 5034) with SCRAM-SHA-256 and SCRAM-SHA-1: Dovecot logs in a {PLAIN}
user and one stored only as a SCRAM-SHA-256 hash; the unforced choice (PLAIN inside TLS,
SCRAM before USER/PASS in clear); a scripted server's faults, each its status with
nothing sent once the fault is seen (no QUIT either)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Mailcli, run_cli
from tests.servers.accounts import Account, numbered_message
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.saslscripts import SCRAM_FAULTS, assert_scram_fault_handled, pop3_scram
from tests.servers.scram import add_hashed_user
from tests.servers.scripted import ScriptedServer


def _stat(account: Account, *options: str) -> tuple[int, str, str]:
    result = Mailcli(account)("--trace", "stat", *options, "--timeout", "5")
    return result.code, result.stdout, result.stderr


def _scram_mailbox(dovecot: Dovecot) -> Mailbox:
    mailbox = make_mailbox(dovecot, "scram")
    mailbox.drop(numbered_message(1))
    return mailbox


@pytest.mark.parametrize("mechanism", ["scram-sha-256", "scram-sha-1"])
def test_stat_logs_in_with_scram(scram_dovecot: Dovecot, mechanism: str) -> None:
    mailbox = _scram_mailbox(scram_dovecot)
    account = Account.pop3(scram_dovecot, mailbox.user, mailbox.password)
    code, stdout, stderr = _stat(account, "--auth", mechanism)
    assert code == 0, stderr
    assert stdout.split()[0] == "1", stdout
    lines = stderr.splitlines()
    start = lines.index(f"~> AUTH {mechanism.upper()} ********")
    # client-first, client-final, the empty answer to the server's signature, +OK
    assert [line[:4] for line in lines[start : start + 6]] == [
        "~> A", "<~ +", "~> *", "<~ +", "~> *", "<~ +"
    ]  # fmt: skip
    assert lines[start + 5].startswith("<~ +OK")
    assert mailbox.password not in stderr


def test_a_user_stored_as_a_scram_hash_logs_in(scram_dovecot: Dovecot) -> None:
    user, password = "scramhashed2", "pencil-\u00e9t\u00e9"
    add_hashed_user(scram_dovecot, user, password)
    code, _, stderr = _stat(Account.pop3(scram_dovecot, user, password), "--auth", "scram-sha-256")
    assert code == 0, stderr


def test_a_wrong_password_is_77(scram_dovecot: Dovecot) -> None:
    mailbox = _scram_mailbox(scram_dovecot)
    account = Account.pop3(scram_dovecot, mailbox.user, "not-the-password")
    code, _, stderr = _stat(account, "--auth", "scram-sha-256")
    assert code == 77, stderr
    assert "not-the-password" not in stderr


def test_unforced_scram_in_clear_and_plain_inside_tls(scram_dovecot: Dovecot) -> None:
    mailbox = _scram_mailbox(scram_dovecot)
    clear = Account.pop3(scram_dovecot, mailbox.user, mailbox.password, security="none")
    code, _, stderr = _stat(clear)
    assert code == 0, stderr
    assert "-> AUTH SCRAM-SHA-256 ********" in stderr.splitlines()
    assert "PASS" not in stderr
    code, _, stderr = _stat(Account.pop3(scram_dovecot, mailbox.user, mailbox.password))
    assert code == 0, stderr
    assert "~> AUTH PLAIN ********" in stderr.splitlines()


def test_the_accounts_auth_key_asks_for_scram(scram_dovecot: Dovecot, config_file: Path) -> None:
    mailbox = _scram_mailbox(scram_dovecot)
    config_file.write_text(
        f'[accounts.work]\nuser = "{mailbox.user}"\n[accounts.work.pop3]\n'
        f'host = "127.0.0.1"\nport = {scram_dovecot.pop3_port}\n'
        f'cafile = "{scram_dovecot.certs.ca_pem}"\nauth = "scram-sha-1"\n'
    )
    result = run_cli(
        ["--account", "work", "--trace", "stat"], env={"MAILCLI_PASSWORD": mailbox.password}
    )
    assert result.code == 0, result.stderr
    assert "~> AUTH SCRAM-SHA-1 ********" in result.stderr.splitlines()


def test_forced_scram_not_offered_is_69(dovecot: Dovecot) -> None:
    mailbox = make_mailbox(dovecot)
    code, _, stderr = _stat(
        Account.pop3(dovecot, mailbox.user, mailbox.password), "--auth", "scram-sha-1"
    )
    assert code == 69, stderr
    assert "> AUTH" not in stderr  # nothing tried


@pytest.mark.parametrize("fault", SCRAM_FAULTS)
def test_a_misbehaving_scram_server(fault: str) -> None:
    with ScriptedServer(pop3_scram("SCRAM-SHA-256", fault)) as server:
        account = Account.scripted(server, "user", "pencil")
        code, _, stderr = _stat(account)
    assert_scram_fault_handled(fault, code, stderr, server.received, "pencil")
