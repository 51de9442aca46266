"""--source-address and the key source_address (transport.connect): every command binds
the local address before connecting. All of 127.0.0.0/8 is loopback on Linux, so
127.0.0.2 is an address of this machine the servers see as the client's."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

from tests.helpers import Mailcli, run_process
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

SOURCE = "127.0.0.2"
NOT_OURS = "192.0.2.7"  # TEST-NET-1: bound to no interface here, so bind() refuses it


def test_send_from_a_source_address(postfix: Postfix, mailbox: Mailbox) -> None:
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    result = Mailcli(account)(
        "send", "--from", mailbox.address, "--to", mailbox.address, "--subject", "src",
        "--body", "x", "--source-address", SOURCE,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    (path,) = postfix.wait_for_delivery(mailbox.user)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert f"[{SOURCE}]" in str(message["Received"])
    postfix.wait_for_log(
        f"client=unknown[{SOURCE}], sasl_method=PLAIN, sasl_username={mailbox.user}\n"
    )


def test_stat_and_check_from_a_source_address(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    pop3 = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))
    result = pop3("stat", "--source-address", SOURCE)
    assert result.code == 0, result.stderr
    dovecot.wait_for_log(f"user=<{mailbox.user}>, method=PLAIN, rip={SOURCE},")
    smtp = Mailcli(Account.submission(postfix, mailbox.user, mailbox.password))
    checked = smtp("check", "smtp", "--source-address", SOURCE)
    assert checked.code == 0, checked.stderr
    # check's session: no AUTH, no mail (a send's disconnect line counts auth and mail)
    postfix.wait_for_log(f"disconnect from unknown[{SOURCE}] ehlo=2 starttls=1 quit=1 commands=4")


def test_config_key_source_address(postfix: Postfix, mailbox: Mailbox, tmp_path: Path) -> None:
    """sendmail, which takes no connection options, binds the account's source_address."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.src]\nfrom = "{mailbox.address}"\nuser = "{mailbox.user}"\n'
        f'[accounts.src.smtp]\nhost = "127.0.0.1"\nport = {postfix.submission_port}\n'
        f'cafile = "{postfix.certs.ca_pem}"\nsource_address = "{SOURCE}"\n'
    )
    env = {**os.environ, "MAILCLI_CONFIG": str(config), "MAILCLI_PASSWORD": mailbox.password}
    message = f"From: {mailbox.address}\nTo: {mailbox.address}\nSubject: s\n\nb\n"
    done = run_process(["sendmail", "-t"], env=env, input=message.encode())
    assert done.returncode == 0, done.stderr
    postfix.wait_for_delivery(mailbox.user)
    postfix.wait_for_log(
        f"client=unknown[{SOURCE}], sasl_method=PLAIN, sasl_username={mailbox.user}\n"
    )


def test_an_address_not_of_this_machine_is_69(dovecot: Dovecot, mailbox: Mailbox) -> None:
    result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
        "stat", "--source-address", NOT_OURS
    )
    assert result.code == 69, result.stderr
    assert f"cannot connect from source address {NOT_OURS}: Cannot assign" in result.stderr


def test_not_an_ip_address_is_a_usage_error(dovecot: Dovecot, mailbox: Mailbox) -> None:
    result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
        "stat", "--source-address", "mail.example.test"
    )
    assert result.code == 64, result.stderr
    assert "is not an IP address" in result.stderr
