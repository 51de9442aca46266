"""Wrong TLS mode (issue 13, item 8): each direction names the fix, against the real
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
from collections.abc import Sequence

import pytest

from tests.helpers import Result, run_cli
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, ScriptedServer

LONG_TIMEOUT = "20"
WELL_BEFORE_TIMEOUT = 10.0  # seconds; the grace period is 2 s
PROBE_LINE = "no greeting after"


def timed(args: Sequence[str], password: str = "x") -> tuple[Result, float]:
    started = time.monotonic()
    result = run_cli(list(args), env={"MAILCLI_PASSWORD": password})
    return result, time.monotonic() - started


def pop3(port: int, security: str, certs: Certs, box: Mailbox) -> list[str]:
    return [
        "stat",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--security",
        security,
        "--cafile",
        str(certs.ca_pem),
        "--user",
        box.user,
        "--timeout",
        LONG_TIMEOUT,
        "--trace",
    ]


def smtp(port: int, security: str, certs: Certs, box: Mailbox) -> list[str]:
    return [
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--security",
        security,
        "--cafile",
        str(certs.ca_pem),
        "--user",
        box.user,
        "--from",
        box.address,
        "--to",
        box.address,
        "--body",
        "x",
        "--timeout",
        LONG_TIMEOUT,
        "--trace",
    ]


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_pop3_cleartext_to_the_implicit_tls_port_names_security_tls_at_once(
    dovecot: Dovecot, certs: Certs, mailbox: Mailbox, security: str
) -> None:
    result, seconds = timed(pop3(dovecot.pop3s_port, security, certs, mailbox), mailbox.password)
    assert result.code == 69, result.stderr
    assert "expects TLS from the first byte" in result.stderr
    assert "hint: use --security tls" in result.stderr
    assert PROBE_LINE in result.stderr  # the grace period ended the wait
    assert seconds < WELL_BEFORE_TIMEOUT


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_smtp_cleartext_to_the_implicit_tls_port_names_security_tls_at_once(
    postfix: Postfix, certs: Certs, mailbox: Mailbox, security: str
) -> None:
    args = smtp(postfix.smtps_port, security, certs, mailbox)
    result, seconds = timed(args, mailbox.password)
    assert result.code == 69, result.stderr
    assert "expects TLS from the first byte" in result.stderr
    assert "hint: use --security tls" in result.stderr
    assert PROBE_LINE in result.stderr
    assert seconds < WELL_BEFORE_TIMEOUT
    assert "~> mail" not in result.stderr.lower() and "-> ehlo" not in result.stderr.lower()


def test_pop3_implicit_tls_to_the_plain_port_names_security_starttls(
    dovecot: Dovecot, certs: Certs, mailbox: Mailbox
) -> None:
    result, _ = timed(pop3(dovecot.pop3_port, "tls", certs, mailbox), mailbox.password)
    assert result.code == 69, result.stderr
    assert "TLS handshake" in result.stderr
    assert "hint: " in result.stderr and "--security starttls" in result.stderr
    assert "greets in clear" in result.stderr


@pytest.mark.parametrize("port", ["smtp_port", "submission_port"])
def test_smtp_implicit_tls_to_a_plain_port_names_security_starttls(
    postfix: Postfix, certs: Certs, mailbox: Mailbox, port: str
) -> None:
    args = smtp(getattr(postfix, port), "tls", certs, mailbox)
    result, _ = timed(args, mailbox.password)
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
        make = pop3 if command == "stat" else smtp
        result, _ = timed(make(server.port, "none", certs, mailbox))
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
        args = pop3(server.port, "none", certs, mailbox)
        args[args.index("--timeout") + 1] = "3"
        result, seconds = timed(args)
    assert result.code == 75, result.stderr
    assert PROBE_LINE in result.stderr  # probed after the grace period, found no TLS
    assert "timed out" in result.stderr
    assert seconds >= 3.0  # the whole timeout, not the grace period: a slow server is waited for
