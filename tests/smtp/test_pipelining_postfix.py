"""PIPELINING against the real Postfix over STARTTLS with AUTH: a message to 20
recipients goes out as one group (MAIL, 20 RCPT, DATA in one write, QUIT with the final
dot) and arrives exactly once in each of the 20 mailboxes."""

from __future__ import annotations

import re

from tests.helpers import Mailcli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

RECIPIENTS = 20


def test_twenty_recipients_in_one_group_each_gets_the_message_once(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    users = [f"{mailbox.user}r{number}" for number in range(RECIPIENTS)]
    for user in users:
        dovecot.add_user(user, "pw")
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    result = Mailcli(account)(
        "--trace",
        "send",
        "--from",
        mailbox.address,
        "--to",
        ", ".join(f"{user}@example.test" for user in users),
        "--subject",
        "twenty",
        "--body",
        "x",
    )
    assert result.code == 0, result.stderr
    trace = result.stderr.splitlines()
    group = trace.index(f"== pipelined: {RECIPIENTS + 2} lines in one write")
    sent = [line.split(" ", 2)[1].upper() for line in trace[group + 1 : group + RECIPIENTS + 3]]
    assert sent == ["MAIL", *["RCPT"] * RECIPIENTS, "DATA"]
    assert trace.count("== pipelined: 2 lines in one write") == 1  # the final dot and QUIT
    assert len([line for line in trace if line.startswith("~> rcpt ")]) == RECIPIENTS
    queue_id = re.search(r"queued as (\w+)", result.stdout)
    assert queue_id is not None, result.stdout
    postfix.wait_for_log(f"{queue_id[1]}: removed")  # every delivery of it is done
    for user in users:
        (path,) = postfix.messages(user)
        assert b"Subject: twenty" in path.read_bytes()
