"""SMTP AUTH with SCRAM-SHA-256 and SCRAM-SHA-1: where the unforced choice puts them,
a login through Postfix to Dovecot's SASL (a {PLAIN} user and one stored only as a
SCRAM-SHA-256 hash), and a scripted server's faults: each its status, one line on
stderr, and nothing sent once the fault is seen (no `*`, no QUIT)."""

from __future__ import annotations

import pytest

from mailcli.smtp.auth import choose_mechanism
from tests.helpers import Mailcli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import make_mailbox
from tests.servers.postfix import Postfix
from tests.servers.saslscripts import SCRAM_FAULTS, assert_scram_fault_handled, smtp_scram
from tests.servers.scram import add_hashed_user
from tests.servers.scripted import ScriptedServer


def test_scram_comes_after_plain_inside_tls_and_first_in_clear() -> None:
    offered = ["LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"]
    assert choose_mechanism(offered, None, tls=True) == "PLAIN"
    assert choose_mechanism(offered[:4], None, tls=True) == "SCRAM-SHA-256"
    assert choose_mechanism(offered[:3], None, tls=True) == "SCRAM-SHA-1"
    assert choose_mechanism(offered, None, tls=False) == "SCRAM-SHA-256"
    assert choose_mechanism(["CRAM-MD5", "SCRAM-SHA-1"], None, tls=False) == "SCRAM-SHA-1"
    assert choose_mechanism(offered, "scram-sha-1", tls=True) == "SCRAM-SHA-1"


def _send(account: Account, address: str, *options: str) -> tuple[int, str]:
    result = Mailcli(account)(
        "--trace", "send", *options, "--from", address, "--to", address, "--body", "x"
    )
    return result.code, result.stderr


@pytest.mark.parametrize("mechanism", ["scram-sha-256", "scram-sha-1"])
def test_postfix_takes_scram_through_dovecot(
    scram_postfix: Postfix, scram_dovecot: Dovecot, mechanism: str
) -> None:
    mailbox = make_mailbox(scram_dovecot, "scram")
    account = Account.submission(scram_postfix, mailbox.user, mailbox.password)
    code, stderr = _send(account, mailbox.address, "--auth", mechanism)
    assert code == 0, stderr
    lines = stderr.splitlines()
    start = lines.index(f"~> AUTH {mechanism.upper()} ********")
    # client-first, client-final, the empty answer to the server's signature, 235
    assert [line[:5] for line in lines[start : start + 6]] == [
        "~> AU", "<~ 33", "~> **", "<~ 33", "~> **", "<~ 23"
    ]  # fmt: skip
    assert mailbox.password not in stderr
    assert len(scram_postfix.wait_for_delivery(mailbox.user)) == 1


def test_a_user_stored_as_a_scram_hash_logs_in(
    scram_postfix: Postfix, scram_dovecot: Dovecot
) -> None:
    user, password = "scramhashed1", "pencil-\u00e9t\u00e9"
    add_hashed_user(scram_dovecot, user, password)
    account = Account.submission(scram_postfix, user, password)
    code, stderr = _send(account, f"{user}@example.test", "--auth", "scram-sha-256")
    assert code == 0, stderr
    assert len(scram_postfix.wait_for_delivery(user)) == 1


def test_a_wrong_password_is_77(scram_postfix: Postfix, scram_dovecot: Dovecot) -> None:
    mailbox = make_mailbox(scram_dovecot, "scram")
    account = Account.submission(scram_postfix, mailbox.user, "not-the-password")
    code, stderr = _send(account, mailbox.address, "--auth", "scram-sha-256")
    assert code == 77, stderr
    assert "not-the-password" not in stderr


@pytest.mark.parametrize("fault", SCRAM_FAULTS)
def test_a_misbehaving_scram_server(fault: str) -> None:
    with ScriptedServer(smtp_scram("SCRAM-SHA-256", fault)) as server:
        account = Account.scripted(server, "user", "pencil")
        code, stderr = _send(account, "a@example.test", "--timeout", "5")
    assert_scram_fault_handled(fault, code, stderr, server.received, "pencil")
