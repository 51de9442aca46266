"""`mailcli check` against the throwaway Postfix and Dovecot and scripted servers, and
`--quit-after` (the "would this recipient be accepted?" probe)."""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.certs import Certs, make_certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.ports import HOST, free_port
from tests.servers.postfix import Postfix
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]


def check(account: Account, *args: str) -> tuple[Result, dict]:  # type: ignore[type-arg]
    result = Mailcli(account)("check", *args, "--json")
    return result, json.loads(result.stdout)


def days_left(certs: Certs) -> int:
    decoded = ssl._ssl._test_decode_cert(str(certs.cert_pem))  # type: ignore[attr-defined]
    expiry = datetime.datetime.fromtimestamp(
        ssl.cert_time_to_seconds(decoded["notAfter"]), tz=datetime.UTC
    )
    return int((expiry - datetime.datetime.now(datetime.UTC)).total_seconds() // 86400)


def levels(report: dict, level: str) -> list[str]:  # type: ignore[type-arg]
    return [f["summary"] for f in report["findings"] if f["level"] == level]


def test_check_smtp_submission_port(smtp_account: Account, certs: Certs) -> None:
    result, report = check(smtp_account, "smtp", "--login")
    assert result.code == 0, result.stderr
    assert report["banner"].startswith("220 ")
    assert "starttls" in report["capabilities_before_tls"]
    assert "starttls" not in report["capabilities_after_tls"]
    assert report["max_message_size"] == int(report["capabilities_after_tls"]["size"]) > 0
    assert report["auth_before_tls"] == []  # encrypt-only submission: no AUTH in clear
    assert {"PLAIN", "LOGIN"} <= set(report["auth_after_tls"])
    tls = report["tls"]
    assert tls["verified"] and tls["version"].startswith("TLSv1.")
    assert "127.0.0.1" in tls["certificate"]["sans"]
    assert abs(tls["certificate"]["days_left"] - days_left(certs)) <= 1
    assert report["login"] is True and report["exit_status"] == 0
    assert levels(report, "fail") == []


def test_check_smtp_implicit_tls_and_plain_ports(postfix: Postfix, mailbox: Mailbox) -> None:
    smtps = Account.submission(postfix, mailbox.user, mailbox.password, security="tls")
    result, report = check(smtps, "smtp")
    assert result.code == 0
    assert report["capabilities_before_tls"] is None and report["tls"]["verified"]
    plain = Account.submission(postfix, mailbox.user, mailbox.password, security="none")
    result, report = check(plain, "smtp")
    assert result.code == 0
    assert report["tls"] is None
    assert "starttls" in report["capabilities_before_tls"]


def test_check_pop3_stls_and_pop3s(
    pop3_account: Account, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    mailbox.drop(b"Subject: x\n\nhello\n")
    result, report = check(pop3_account, "pop3", "--login")
    assert result.code == 0, result.stderr
    assert "STLS" in report["capabilities_before_tls"]
    assert "STLS" not in report["capabilities_after_tls"]
    assert report["stat"] == {"messages": 1, "octets": len(b"Subject: x\r\n\r\nhello\r\n")}
    assert any("offered before TLS" in w for w in levels(report, "warn"))
    pop3s = Account.pop3(dovecot, mailbox.user, mailbox.password, security="tls")
    result, report = check(pop3s, "pop3")
    assert result.code == 0 and report["tls"]["verified"]


def test_check_wrong_password_is_77(pop3_account: Account) -> None:
    result, report = check(replace(pop3_account, password="wrong"), "pop3", "--login")
    assert result.code == 77
    assert report["login"] is False


def test_expired_certificate_fails_77_with_details(
    aiosmtpd_factory: Factory, tmp_path: Path
) -> None:
    expired = make_certs(tmp_path, "expired", expired=True)
    server = aiosmtpd_factory(tls_context=expired.server_context())
    result, report = check(Account.smtpd(server, cafile=expired.ca_pem), "smtp")
    assert result.code == 77
    assert report["tls"]["verified"] is False
    assert "expired" in report["tls"]["verify_error"]
    assert report["tls"]["certificate"]["days_left"] < 0
    assert any("expired" in f for f in levels(report, "fail"))
    assert not server.saw_command("AUTH")


def test_auth_before_tls_warns_and_missing_starttls_fails(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory(users={"alice": "pw"}, auth_require_tls=False)
    result, report = check(Account.smtpd(server), "smtp")
    assert result.code == 69
    assert any("offered before TLS" in w for w in levels(report, "warn"))
    assert any("no STARTTLS" in f for f in levels(report, "fail"))


def test_check_text_report_and_connection_refused() -> None:
    result = Mailcli(Account(HOST, free_port()))("check", "pop3")
    assert result.code == 69
    assert "fail\tconnect\tconnection to 127.0.0.1" in result.stdout


def test_quit_after_rcpt_probes_without_data(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    server.refuse_rcpt = {"gone@example.test"}
    send = Mailcli(Account.smtpd(server, security="none"))
    base = ("send", "--from", "a@example.test", "--body", "x", "--quit-after", "rcpt")
    accepted = send(*base, "--to", "bob@example.test")
    assert accepted.code == 0
    assert "stopped after rcpt" in accepted.stderr
    refused = send(*base, "--to", "gone@example.test")
    assert refused.code == 67
    assert not server.saw_command("DATA") and server.received == []
    assert server.saw_command("QUIT")


@pytest.mark.mailcli(account="smtp_account")
def test_quit_after_rcpt_against_postfix(
    mailcli: Mailcli, postfix: Postfix, mailbox: Mailbox
) -> None:
    base = ("send", "--from", mailbox.address, "--body", "x", "--quit-after", "rcpt")
    assert mailcli(*base, "--to", mailbox.address).code == 0
    assert mailcli(*base, "--to", postfix.refused_recipient).code == 67
    log = postfix.maillog()
    assert "data=" not in log.split(f"sasl_username={mailbox.user}")[-1]
    assert postfix.messages(mailbox.user) == []


def test_quit_after_phases_stop_cleanly(
    aiosmtpd_factory: Factory, pop3_account: Account, certs: Certs
) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context())
    smtp = Mailcli(Account.smtpd(server, cafile=certs.ca_pem))(
        "send", "--from", "a@x.test", "--to", "b@x.test", "--body", "x", "--quit-after", "tls"
    )
    assert smtp.code == 0 and "stopped after tls" in smtp.stderr
    assert server.saw_command("QUIT") and not server.saw_command("MAIL")
    pop = Mailcli(pop3_account)("stat", "--quit-after", "auth", "--trace")
    assert pop.code == 0 and pop.stdout == ""
    assert "~> AUTH PLAIN ********" in pop.stderr and "STAT" not in pop.stderr
    assert "~> QUIT" in pop.stderr
    capa, report = check(pop3_account, "pop3", "--quit-after", "capa")
    assert capa.code == 0 and report["tls"] is None
    assert "STLS" in report["capabilities_before_tls"]
