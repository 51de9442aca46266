"""SMTP AUTH with a password that is not ASCII, through the real Postfix (Dovecot checks
the password): RFC 4616 and 4954 send it as UTF-8, each mechanism mailcli speaks."""

from __future__ import annotations

import pytest

from tests.helpers import Mailcli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

PASSWORD = "pässwörd-ü€"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_a_utf8_password_logs_in_with_every_mechanism(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox, mechanism: str
) -> None:
    user = f"{mailbox.user}u"
    dovecot.add_user(user, PASSWORD)
    account = Account.submission(postfix, user, PASSWORD)
    result = Mailcli(account)(
        "--trace",
        "send",
        "--auth",
        mechanism,
        "--from",
        f"{user}@example.test",
        "--to",
        mailbox.address,
        "--subject",
        "utf-8 login",
        "--body",
        "x",
    )
    assert result.code == 0, result.stderr
    assert f"AUTH {mechanism}" in result.stderr
    assert "235" in result.stderr
    assert PASSWORD not in result.stderr
    (path,) = postfix.wait_for_delivery(mailbox.user)
    assert b"Subject: utf-8 login" in path.read_bytes()


def test_a_wrong_utf8_password_is_refused_not_a_crash(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    user = f"{mailbox.user}w"
    dovecot.add_user(user, PASSWORD)
    account = Account.submission(postfix, user, PASSWORD + "x")
    result = Mailcli(account)(
        "send",
        "--from",
        f"{user}@example.test",
        "--to",
        mailbox.address,
        "--subject",
        "s",
        "--body",
        "x",
    )
    assert result.code == 77, result.stderr
    assert result.stderr.startswith("mailcli: error: authentication as")
    assert PASSWORD not in result.stderr
