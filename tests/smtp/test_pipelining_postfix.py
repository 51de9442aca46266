"""PIPELINING against the real Postfix over STARTTLS with AUTH: a message to 20 recipients
goes out as one group and arrives exactly once in each of the 20 mailboxes. Postfix
offers CHUNKING: a small message goes with `BDAT n LAST` and QUIT in the envelope's own
write (one round trip for the whole transaction); a large one (over 64 KiB) with DATA in
the group, then the message and QUIT with its final dot."""

from __future__ import annotations

import re

import pytest

from tests.helpers import Mailcli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

RECIPIENTS = 20
LARGE_BODY = "line of a large message\n" * 4000  # ~100 KB: over one chunk


@pytest.mark.parametrize("body", ["x", LARGE_BODY], ids=["bdat", "data"])
def test_twenty_recipients_in_one_group_each_gets_the_message_once(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox, body: str
) -> None:
    users = [f"{mailbox.user}r{number}" for number in range(RECIPIENTS)]
    for user in users:
        dovecot.add_user(user, "pw")
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    recipients = ", ".join(f"{user}@example.test" for user in users)
    result = Mailcli(account)(
        "--trace", "send", "--from", mailbox.address, "--to", recipients, "--subject", "twenty",
        "--body", body,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    trace = result.stderr.splitlines()
    if body == LARGE_BODY:
        group = trace.index(f"== pipelined: {RECIPIENTS + 2} lines in one write")
        assert trace.count("== pipelined: 2 lines in one write") == 1  # the final dot and QUIT
        last = "DATA"
    else:
        group = trace.index(f"== pipelined: {RECIPIENTS + 3} lines and the message in one write")
        last = "BDAT"
    sent = [line.split(" ", 2)[1].upper() for line in trace[group + 1 : group + RECIPIENTS + 3]]
    assert sent == ["MAIL", *["RCPT"] * RECIPIENTS, last]
    assert len([line for line in trace if line.startswith("~> rcpt ")]) == RECIPIENTS
    queue_id = re.search(r"queued as (\w+)", result.stdout)
    assert queue_id is not None, result.stdout
    postfix.wait_for_log(f"{queue_id[1]}: removed")  # every delivery of it is done
    for user in users:
        (path,) = postfix.messages(user)
        assert b"Subject: twenty" in path.read_bytes()
        assert path.read_bytes().endswith(body.encode() if body.endswith("\n") else b"x\n")
