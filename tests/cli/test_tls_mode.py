"""Wrong TLS mode: each direction names the fix, against the real
Dovecot and Postfix.

* plain or STARTTLS to an implicit-TLS port: the server waits for a ClientHello and says
  nothing, so silence is the only signal. After a grace period without a greeting mailcli
  probes the port with a ClientHello on a second connection; a TLS answer ends the wait
  at once (69, hint `--security tls`) instead of after the whole --timeout (was 75, "a
  slow server? raise --timeout", after 20 s here). The trace line proves the grace
  period, not luck, ended it; the time bound is a wide behaviour bound, not a benchmark.
* implicit TLS to a port that greets in clear: the handshake fails at once (69, as
  before), and now the hint names `--security starttls`.
* a TLS record where a greeting should be: said at once, without any grace period.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account, Security
from tests.servers.certs import Certs
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, ScriptedServer

LONG_TIMEOUT = "20"
WELL_BEFORE_TIMEOUT = 10.0  # seconds; the grace period is 2 s
PROBE_LINE = "no greeting after"


def timed(account: Account, *command: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = Mailcli(account)(*command, "--trace")
    return result, time.monotonic() - started


def pop3(account: Account, timeout: str = LONG_TIMEOUT) -> tuple[Result, float]:
    return timed(account, "stat", "--timeout", timeout)


def smtp(account: Account, box: Mailbox) -> tuple[Result, float]:
    message = ["--from", box.address, "--to", box.address, "--body", "x"]
    return timed(account, "send", *message, "--timeout", LONG_TIMEOUT)


@pytest.mark.pop3_account(security="tls")
@pytest.mark.parametrize("security", ["none", "starttls"])
def test_pop3_cleartext_to_the_implicit_tls_port_names_security_tls_at_once(
    pop3_account: Account, security: Security
) -> None:
    result, seconds = pop3(replace(pop3_account, security=security))
    assert result.code == 69, result.stderr
    assert "expects TLS from the first byte" in result.stderr
    assert "hint: use --security tls" in result.stderr
    assert PROBE_LINE in result.stderr  # the grace period ended the wait
    assert seconds < WELL_BEFORE_TIMEOUT


@pytest.mark.smtp_account(security="tls")
@pytest.mark.parametrize("security", ["none", "starttls"])
def test_smtp_cleartext_to_the_implicit_tls_port_names_security_tls_at_once(
    smtp_account: Account, mailbox: Mailbox, security: Security
) -> None:
    result, seconds = smtp(replace(smtp_account, security=security), mailbox)
    assert result.code == 69, result.stderr
    assert "expects TLS from the first byte" in result.stderr
    assert "hint: use --security tls" in result.stderr
    assert PROBE_LINE in result.stderr
    assert seconds < WELL_BEFORE_TIMEOUT
    assert "~> mail" not in result.stderr.lower() and "-> ehlo" not in result.stderr.lower()


def test_pop3_implicit_tls_to_the_plain_port_names_security_starttls(
    pop3_account: Account,
) -> None:
    result, _ = pop3(replace(pop3_account, security="tls"))
    assert result.code == 69, result.stderr
    assert "TLS handshake" in result.stderr
    assert "hint: " in result.stderr and "--security starttls" in result.stderr
    assert "greets in clear" in result.stderr


@pytest.mark.parametrize("port", ["smtp_port", "submission_port"])
def test_smtp_implicit_tls_to_a_plain_port_names_security_starttls(
    postfix: Postfix, smtp_account: Account, mailbox: Mailbox, port: str
) -> None:
    result, _ = smtp(replace(smtp_account, port=getattr(postfix, port), security="tls"), mailbox)
    assert result.code == 69, result.stderr
    assert "TLS handshake" in result.stderr
    assert "hint: " in result.stderr and "--security starttls" in result.stderr
    assert "greets in clear" in result.stderr


def tls_alert_instead_of_greeting(conn: Conn) -> None:
    conn.send_bytes(b"\x15\x03\x03\x00\x02\x02\x32")  # a TLS alert record: decode_error
    conn.recv_line()  # hold the connection open until the client leaves


@pytest.mark.parametrize("command", ["stat", "send"])
def test_a_tls_record_instead_of_a_greeting_names_security_tls_without_waiting(
    command: str, certs: Certs, mailbox: Mailbox
) -> None:
    with ScriptedServer(tls_alert_instead_of_greeting) as server:
        account = Account.scripted(server, mailbox.user, "x", cafile=certs.ca_pem)
        result, _ = pop3(account) if command == "stat" else smtp(account, mailbox)
    assert result.code == 69, result.stderr
    assert "expects TLS from the first byte" in result.stderr
    assert "hint: use --security tls" in result.stderr
    assert PROBE_LINE not in result.stderr  # recognised from the bytes, not from silence


def silent(conn: Conn) -> None:
    conn.recv_line()  # neither greets nor speaks TLS: says nothing until the client leaves


def test_a_silent_port_that_does_not_speak_tls_still_waits_out_the_timeout(
    certs: Certs, mailbox: Mailbox
) -> None:
    with ScriptedServer(silent) as server:
        result, seconds = pop3(
            Account.scripted(server, mailbox.user, "x", cafile=certs.ca_pem), "3"
        )
    assert result.code == 75, result.stderr
    assert PROBE_LINE in result.stderr  # probed after the grace period, found no TLS
    assert "timed out" in result.stderr
    assert seconds >= 3.0  # the whole timeout, not the grace period: a slow server is waited for
