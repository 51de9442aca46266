"""The test fixture chain itself: server -> account -> the mailcli runner, each link
configured by a marker (tests/conftest.py, tests/servers/fixtures.py)."""

from __future__ import annotations

import pytest

from tests.helpers import Mailcli
from tests.servers.accounts import numbered_message
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix


@pytest.mark.mailcli(process=True)
@pytest.mark.pop3_account(security="tls")
def test_a_real_process_over_pop3s(mailcli: Mailcli, mailbox: Mailbox) -> None:
    mailbox.drop(numbered_message(1), numbered_message(2, size=1000))
    assert mailcli.process and mailcli.account.security == "tls"
    result = mailcli("stat", "--trace")
    assert result.code == 0, result.stderr
    assert "-> STLS" not in result.stderr
    assert result.stdout.startswith("2\t")


def test_in_process_by_default_with_mailcli_default_security(mailcli: Mailcli) -> None:
    assert not mailcli.process and "--security" not in mailcli.account.args()
    assert "-> STLS" in mailcli("stat", "--trace").stderr


@pytest.mark.mailcli(account="smtp_account")
def test_an_smtp_account_submits_through_postfix(
    mailcli: Mailcli, mailbox: Mailbox, postfix: Postfix
) -> None:
    result = mailcli("send", "--from", mailbox.address, "--to", mailbox.address, "--body", "x")
    assert result.code == 0, result.stderr
    assert len(postfix.wait_for_delivery(mailbox.user, 1)) == 1
