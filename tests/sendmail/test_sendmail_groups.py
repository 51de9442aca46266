"""RFC 5322 groups in the header `sendmail -t` reads, through the real Postfix: the empty
group names nobody and stays in the delivered bytes as given, a group's members are
recipients (in Bcc too, whose field is never transmitted), and a message whose only
recipients are empty groups is "no recipients" (65), before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Result, run_cli
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix


@pytest.fixture
def sendmail(postfix: Postfix, config_file: Path) -> Postfix:
    """An account submitting to Postfix's port-25 listener (no AUTH from 127.0.0.1)."""
    config_file.write_text(
        '[accounts.main]\nfrom = "Ann <ann@example.test>"\ndomain = "example.test"\n'
        f'[accounts.main.smtp]\nhost = "127.0.0.1"\nport = {postfix.smtp_port}\n'
        'security = "none"\n'
    )
    return postfix


def run_sendmail(header: str, *args: str) -> Result:
    raw = f"From: Ann <ann@example.test>\n{header}Subject: groups\n\nbody\n"
    return run_cli(["sendmail", "-v", "-t", "-i", *args], input=raw)


def rcpt_lines(trace: str) -> list[str]:
    return sorted(line for line in trace.splitlines() if line.startswith("-> rcpt "))


def test_undisclosed_recipients_with_bcc(
    sendmail: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    result = run_sendmail(f"To: undisclosed-recipients:;\nBcc: {mailbox.address}\n")
    assert result.code == 0, result.stderr
    assert rcpt_lines(result.stderr) == [f"-> rcpt TO:<{mailbox.address}>"]
    (path,) = sendmail.wait_for_delivery(mailbox.user)
    delivered = path.read_bytes()
    assert b"\nTo: undisclosed-recipients:;\n" in delivered
    assert b"Bcc" not in delivered


def test_group_members_are_recipients_in_to_and_in_bcc(
    sendmail: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    users = [f"{mailbox.user}{n}" for n in "abc"]
    for user in users:
        dovecot.add_user(user, "pw")
    a, b, c = (f"{user}@example.test" for user in users)
    header = f"To: team: {a}, Bee <{b}>;\nBcc: hidden: {c};\n"
    result = run_sendmail(header)
    assert result.code == 0, result.stderr
    assert rcpt_lines(result.stderr) == sorted(f"-> rcpt TO:<{x}>" for x in (a, b, c))
    for user in users:
        (path,) = sendmail.wait_for_delivery(user)
        delivered = path.read_bytes()
        assert f"\nTo: team: {a}, Bee <{b}>;\n".encode() in delivered
        assert b"hidden" not in delivered and b"Bcc" not in delivered


def test_only_an_empty_group_is_no_recipients(sendmail: Postfix) -> None:
    result = run_sendmail("To: undisclosed-recipients:;\n")
    assert result.code == 65
    assert result.stderr.splitlines()[0] == (
        "mailcli: error: sendmail: the message names no recipients (To/Cc/Bcc)"
    )
    assert "connecting" not in result.stderr


def test_an_empty_group_with_a_command_line_recipient(sendmail: Postfix, mailbox: Mailbox) -> None:
    result = run_sendmail("To: undisclosed-recipients:;\n", mailbox.address)
    assert result.code == 0, result.stderr
    (path,) = sendmail.wait_for_delivery(mailbox.user)
    assert b"\nTo: undisclosed-recipients:;\n" in path.read_bytes()
