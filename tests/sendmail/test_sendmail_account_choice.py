"""sendmail chooses the account by the sender, as msmtp does: `-a`, else the account whose
`from` matches `-f` (or, with `-t`, the From field), else the default. Two accounts
with pattern `from`s log in to the real Postfix as two different Dovecot users; the
log's `sasl_username` says which one submitted."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import pytest

from mailcli.errors import ExitStatus
from tests.helpers import queue_dir, run_process
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.ports import HOST, free_port
from tests.servers.postfix import Postfix


def account_table(name: str, pattern: str, box: Mailbox, port: int, certs: Certs) -> str:
    return f"""
[accounts.{name}]
from = "{pattern}"
user = "{box.user}"
password_command = "echo {box.password}"

[accounts.{name}.smtp]
host = "{HOST}"
port = {port}
security = "starttls"
cafile = "{certs.ca_pem}"
"""


class Identities:
    """Accounts `one` (*@one.example) and `two` (*@two.example), each its own user."""

    def __init__(self, config: Path, dovecot: Dovecot, postfix: Postfix, default: str) -> None:
        self.config, self.postfix, self.certs = config, postfix, postfix.certs
        self.one, self.two = make_mailbox(dovecot, "one"), make_mailbox(dovecot, "two")
        self.write(default, postfix.submission_port, postfix.submission_port)

    def write(self, default: str, port_one: int, port_two: int) -> None:
        self.config.write_text(
            f'default_account = "{default}"\n'
            + account_table("one", "*@one.example", self.one, port_one, self.certs)
            + account_table("two", "*@two.example", self.two, port_two, self.certs)
        )

    def wait_for_login(self, box: Mailbox) -> None:
        """Until Postfix has logged `box`'s login (postlogd writes a moment later)."""
        self.postfix.wait_for_log(f"sasl_username={box.user}\n")

    def logged_in_as(self, box: Mailbox) -> bool:
        """Whether Postfix has logged `box`'s login by now (after `wait_for_login` of another)."""
        return re.search(rf"sasl_username={box.user}$", self.postfix.maillog(), re.M) is not None


@pytest.fixture
def identities(config_file: Path, dovecot: Dovecot, postfix: Postfix) -> Identities:
    return Identities(config_file, dovecot, postfix, default="one")


def sendmail(*args: str, message: bytes) -> tuple[int, str]:
    done = run_process(["sendmail", *args], input=message)
    return done.returncode, done.stderr.decode()


def delivered(postfix: Postfix, box: Mailbox) -> email.message.EmailMessage:
    (path,) = postfix.wait_for_delivery(box.user)
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_f_chooses_the_account_whose_pattern_matches(
    identities: Identities, postfix: Postfix, mailbox: Mailbox
) -> None:
    body = b"Subject: as two\n\nhello\n"
    assert sendmail("-f", "ann@two.example", mailbox.address, message=body) == (0, "")
    message = delivered(postfix, mailbox)
    assert message["Return-Path"] == "<ann@two.example>"
    assert message["From"] == "ann@two.example"  # added from the sender, not the pattern
    identities.wait_for_login(identities.two)
    assert not identities.logged_in_as(identities.one)


def test_t_chooses_by_the_from_field(
    config_file: Path, dovecot: Dovecot, postfix: Postfix, mailbox: Mailbox
) -> None:
    identities = Identities(config_file, dovecot, postfix, default="two")
    body = f"From: Ann <ann@one.example>\nTo: {mailbox.address}\nSubject: t\n\nhi\n".encode()
    assert sendmail("-t", "-i", message=body) == (0, "")
    message = delivered(postfix, mailbox)
    assert message["Return-Path"] == "<ann@one.example>"  # the From field's, not *@one
    identities.wait_for_login(identities.one)
    assert not identities.logged_in_as(identities.two)


def test_a_beats_the_sender(identities: Identities, postfix: Postfix, mailbox: Mailbox) -> None:
    body = b"Subject: named\n\nx\n"
    assert sendmail("-a", "two", "-f", "ann@one.example", mailbox.address, message=body) == (
        0,
        "",
    )
    assert delivered(postfix, mailbox)["Return-Path"] == "<ann@one.example>"
    identities.wait_for_login(identities.two)


def test_a_pattern_account_without_a_sender_is_78(
    identities: Identities, postfix: Postfix, mailbox: Mailbox
) -> None:
    code, stderr = sendmail("-a", "two", mailbox.address, message=b"Subject: none\n\nx\n")
    assert code == ExitStatus.CONFIG
    assert stderr.splitlines()[0] == (
        "mailcli: error: account 'two': from = '*@two.example' is a pattern that chooses "
        "the account by sender, not an address to send as"
    )
    assert not identities.logged_in_as(identities.two)
    assert postfix.messages(mailbox.user) == []


def test_a_queued_message_keeps_the_chosen_account(
    identities: Identities, postfix: Postfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    identities.write("one", postfix.submission_port, free_port())  # two's server is down
    code, stderr = sendmail("-f", "ann@two.example", mailbox.address, message=b"\nqueued\n")
    assert code == 0 and "queued" in stderr
    (entry,) = queue_dir(isolated_environment).glob("*.json")
    assert json.loads(entry.read_text())["account"] == "two"
    identities.write("one", postfix.submission_port, postfix.submission_port)
    ran = run_process(["queue", "run"])
    assert ran.returncode == 0, ran.stderr
    assert delivered(postfix, mailbox)["Return-Path"] == "<ann@two.example>"
    identities.wait_for_login(identities.two)


def test_the_null_sender_through_a_pattern_account(
    identities: Identities, postfix: Postfix, mailbox: Mailbox
) -> None:
    """-f '<>' (a bounce, an auto-reply) with `from` a pattern and no domain: a message
    without From has no address to be from (65, nothing sent, never an empty From:);
    with its own From it goes with the null sender."""
    code, stderr = sendmail("-a", "two", "-f", "<>", mailbox.address, message=b"Subject: b\n\nx\n")
    assert code == ExitStatus.DATAERR, stderr
    assert "the null sender (-f '<>') gives no address for the From field" in stderr
    assert postfix.messages(mailbox.user) == []
    body = b"From: robot@two.example\nSubject: bounce\n\nx\n"
    assert sendmail("-a", "two", "-f", "<>", mailbox.address, message=body) == (0, "")
    message = delivered(postfix, mailbox)
    assert message["Return-Path"] == "<>" and message["From"] == "robot@two.example"
