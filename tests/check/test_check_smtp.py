"""`check smtp` as a `with SmtpSession(...)`: every path ends with QUIT, the TLS trace
follows STARTTLS, and no credential leaves before TLS."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]


def check_smtp(account: Account, *args: str) -> tuple[Result, dict]:  # type: ignore[type-arg]
    result = Mailcli(account)("check", "smtp", *args, "--json")
    return result, json.loads(result.stdout)


def failures(report: dict) -> list[str]:  # type: ignore[type-arg]
    return [f["summary"] for f in report["findings"] if f["level"] == "fail"]


def test_login_against_a_server_without_auth_ends_with_quit(
    aiosmtpd_factory: Factory, certs: Certs
) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context())  # no users: no AUTH
    account = Account.smtpd(server, "alice", "pw", cafile=certs.ca_pem)
    result, report = check_smtp(account, "--login")
    assert result.code == 69, result.stderr
    assert any("offers no AUTH" in message for message in failures(report))
    assert report["tls"]["verified"] and report["auth_after_tls"] == []
    assert server.saw_command("QUIT")
    assert not server.saw_command("AUTH")


def test_trace_shows_tls_after_starttls(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context())
    result = Mailcli(Account.smtpd(server, cafile=certs.ca_pem))("check", "smtp", "--trace")
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    starttls = next(n for n, line in enumerate(lines) if line.startswith("-> STARTTLS"))
    established = next(n for n, line in enumerate(lines) if "== TLS established: TLS" in line)
    second_ehlo = next(n for n, line in enumerate(lines) if line.upper().startswith("~> EHLO"))
    assert starttls < established < second_ehlo
    assert any(line.startswith("== certificate: names") for line in lines[established:])
    assert server.saw_command("QUIT")


def test_login_never_sends_credentials_when_starttls_is_missing(
    aiosmtpd_factory: Factory,
) -> None:
    server = aiosmtpd_factory(users={"alice": "pw"}, auth_require_tls=False)  # no TLS at all
    result, report = check_smtp(Account.smtpd(server, "alice", "pw"), "--login")
    assert result.code == 69
    assert any("no STARTTLS" in message for message in failures(report))
    assert {"PLAIN", "LOGIN"} <= set(report["auth_before_tls"])
    assert not server.saw_command("AUTH")
    assert server.saw_command("QUIT")


def test_send_ends_with_quit_after_a_refused_mail_from(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    server.mail_reply = "550 5.7.1 sender refused by test server"
    send = Mailcli(Account.smtpd(server, security="none"))
    result = send("send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x")
    assert result.code == 69, result.stderr
    assert "sender refused" in result.stderr
    assert server.saw_command("QUIT")
