"""Which password mechanism SMTP AUTH picks unforced: inside TLS, PLAIN with its initial
response (one round trip) before LOGIN and CRAM-MD5; in clear, CRAM-MD5 first as before,
so no password crosses the wire when it is offered."""

from __future__ import annotations

from tests.helpers import Mailcli
from tests.servers.accounts import Account
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpscripts import smtp_server


def test_starttls_logs_in_with_plain_in_one_round_trip(postfix: Postfix, mailbox: Mailbox) -> None:
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    result = Mailcli(account)(
        "--trace", "send", "--from", mailbox.address, "--to", mailbox.address, "--body", "x"
    )
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "~> AUTH PLAIN ********" in lines
    after_auth = lines[lines.index("~> AUTH PLAIN ********") + 1]
    assert after_auth.startswith("<~ 235"), after_auth  # no 334 between: one round trip
    assert len(postfix.wait_for_delivery(mailbox.user)) == 1


def test_in_clear_cram_md5_is_still_preferred() -> None:
    ehlo = ("250-scripted", "250 AUTH PLAIN LOGIN CRAM-MD5")
    refuse = {"AUTH": "535 5.7.8 no"}  # which mechanism was tried is all this asks
    with ScriptedServer(smtp_server(ehlo, refuse)) as server:
        result = Mailcli(Account.scripted(server))(
            "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x"
        )
    assert result.code == 77, result.stderr
    auth = [line for line in server.received if line.upper().startswith("AUTH")]
    assert auth == ["AUTH CRAM-MD5"]
