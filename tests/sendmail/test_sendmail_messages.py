"""What sendmail mode and `send --message` make of the message they are given, against
real servers: input that is only a body (`df -h | sendmail ops`), every spelling of the
recipient fields under -t, and the blind-copy fields (Bcc, Resent-Bcc) that must reach
their recipients and nobody's header.

Postfix removes Bcc and Resent-Bcc itself, so the bytes mailcli transmits are looked at
on aiosmtpd, which keeps them as received; Postfix shows what a recipient gets."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.helpers import Mailcli, run_cli
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.cronhost import CronHost
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix
from tests.servers.smtpd import AioSmtpd

DF_OUTPUT = (
    b"Filesystem      Size  Used Avail Use% Mounted on\n"
    b"/dev/sda1        20G  5.1G   14G  27% /\n"
    b"tmpfs: 1.6G\n"
    b"\n"
    b"Subject: not a header here\n"
)


@pytest.fixture
def cron(tmp_path: Path, postfix: Postfix, certs: Certs, mailbox: Mailbox) -> CronHost:
    return CronHost(tmp_path, postfix, certs, mailbox)


def _delivered(path: Path) -> tuple[EmailMessage, bytes]:
    raw = path.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return message, raw.partition(b"\n\n")[2]


def test_body_only_input_is_delivered_as_the_body_with_the_added_headers(
    cron: CronHost, postfix: Postfix, mailbox: Mailbox
) -> None:
    done = cron.sendmail("root", input=DF_OUTPUT)
    assert (done.returncode, done.stderr) == (0, b"")
    (path,) = postfix.wait_for_delivery(mailbox.user)
    message, body = _delivered(path)
    assert body == DF_OUTPUT  # every byte (the Maildir keeps LF line ends)
    assert message["From"] == f"Cron on host <{mailbox.address}>"  # the account's from
    assert message["Date"] and message["Message-ID"]
    assert message["Subject"] is None and message["To"] is None  # nobody adds a To


def test_obsolete_bcc_spelling_under_t_reaches_its_recipient_and_no_header(
    cron: CronHost, postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    dovecot.add_user(mailbox.user + "x", "pw")
    raw = f"To: {mailbox.address}\nBcc : {mailbox.user}x\nSubject: blind\n\nfor two\n"
    done = cron.sendmail("-t", "-i", input=raw.encode())
    assert done.returncode == 0, done.stderr
    copies = postfix.wait_for_delivery(mailbox.user) + postfix.wait_for_delivery(mailbox.user + "x")
    for path in copies:
        message, body = _delivered(path)
        assert message["Subject"] == "blind" and body == b"for two\n"
        assert b"bcc" not in path.read_bytes().lower()


def test_resent_message_under_t_goes_to_its_resent_recipients(
    cron: CronHost, postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    dovecot.add_user(mailbox.user + "y", "pw")
    raw = (
        f"From: ann@example.test\nTo: original@example.test\nSubject: forwarded\n"
        f"Resent-From: {mailbox.address}\nResent-To: {mailbox.address}\n"
        f"resent-bcc : {mailbox.user}y\n\nbody\n"
    )
    done = cron.sendmail("-t", "-i", input=raw.encode())
    assert done.returncode == 0, done.stderr
    for user in (mailbox.user, mailbox.user + "y"):
        (path,) = postfix.wait_for_delivery(user)
        assert _delivered(path)[0]["Subject"] == "forwarded"
        assert b"resent-bcc" not in path.read_bytes().lower()


# -- the bytes mailcli transmits (aiosmtpd keeps them) ----------------------------------

BLIND = (
    b"From: Ann <ann@example.org>\nTo: bob@example.org\nSubject: s\n"
    b"Resent-From: ann@example.org\nResent-To: carl@example.org\n"
    b"Resent-Bcc: dora@example.org\nBcc : erin@example.org\n\nbody\n"
)


@pytest.fixture
def smtpd(aiosmtpd_factory: Callable[..., AioSmtpd], config_file: Path) -> AioSmtpd:
    server: AioSmtpd = aiosmtpd_factory()
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(
        '[accounts.main]\nfrom = "Ann <ann@example.org>"\ndomain = "example.org"\n'
        f'[accounts.main.smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
        'security = "none"\n'
    )
    return server


def test_sendmail_t_transmits_no_blind_field_and_uses_the_resent_recipients(
    smtpd: AioSmtpd,
) -> None:
    result = run_cli(["sendmail", "-t", "-i"], input=BLIND.decode())
    assert result.code == 0, result.stderr
    (received,) = smtpd.received
    assert received.rcpt_tos == ("carl@example.org", "dora@example.org")
    assert b"dora" not in received.data and b"bcc" not in received.data.lower()
    assert b"erin" not in received.data  # a Bcc of the original message, not resent
    assert b"\r\nTo: bob@example.org\r\n" in received.data


def test_send_message_transmits_no_blind_field(smtpd: AioSmtpd, tmp_path: Path) -> None:
    ready = tmp_path / "forward.eml"
    ready.write_bytes(BLIND)
    plain = Mailcli(Account.smtpd(smtpd, security="none"))
    result = plain("send", "--message", str(ready), "--json")
    assert result.code == 0, result.stderr
    assert sorted(json.loads(result.stdout)["accepted"]) == [
        "carl@example.org",
        "dora@example.org",
    ]
    (received,) = smtpd.received
    assert b"dora" not in received.data and b"bcc" not in received.data.lower()


def test_sendmail_body_only_input_is_transmitted_unchanged(smtpd: AioSmtpd) -> None:
    result = run_cli(["sendmail", "ops@example.org"], input=DF_OUTPUT.decode())
    assert result.code == 0, result.stderr
    (received,) = smtpd.received
    assert received.rcpt_tos == ("ops@example.org",)
    head, _, body = received.data.partition(b"\r\n\r\n")
    assert body == DF_OUTPUT.replace(b"\n", b"\r\n")
    assert [line.split(b":")[0] for line in head.split(b"\r\n")] == [
        b"From",
        b"Date",
        b"Message-ID",
    ]


@pytest.mark.parametrize(
    "args",
    [["sendmail", "-i", "carl"], ["send", "--message", "-", "--rcpt", "carl@example.org"]],
    ids=["sendmail", "send --message"],
)
def test_resent_bcc_never_reaches_the_wire_whoever_the_recipients_are(
    smtpd: AioSmtpd, args: list[str]
) -> None:
    result = run_cli(args, input=BLIND.decode())
    assert result.code == 0, result.stderr
    (received,) = smtpd.received
    assert received.rcpt_tos == ("carl@example.org",)
    assert b"dora" not in received.data and b"bcc" not in received.data.lower()
