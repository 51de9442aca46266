"""Smoke tests of the throwaway-server launcher (tests/servers): each server works as its
docstring promises, so a failure elsewhere points at mailcli rather than at the test rig."""

from __future__ import annotations

import json
import poplib
import smtplib
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    NEEDS,
    AioSmtpd,
    Certs,
    Dovecot,
    Postfix,
    SecretService,
    make_certs,
    require,
)
from tests.servers.fixtures import Mailbox
from tests.servers.ports import read_greeting

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 5  # seconds for any single network operation against a local server


def message(subject: str) -> bytes:
    return f"From: a@example.test\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()


def pop3_login(dovecot: Dovecot, user: str, password: str) -> poplib.POP3:
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=TIMEOUT)
    pop.user(user)
    pop.pass_(password)
    return pop


def ehlo_keywords(client: smtplib.SMTP) -> set[str]:
    client.ehlo()
    return {name.upper() for name in client.esmtp_features}


# --- Dovecot -----------------------------------------------------------------------------


def test_dovecot_plain_port_offers_stls_and_apop(dovecot: Dovecot) -> None:
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=TIMEOUT)
    try:
        assert "STLS" in pop.capa()
        assert b"<" in pop.getwelcome()  # the APOP timestamp
    finally:
        pop.quit()


def test_dovecot_pop3s_certificate_verifies_against_the_test_ca_only(
    dovecot: Dovecot, certs: Certs, untrusted_certs: Certs
) -> None:
    pop = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=certs.client_context(), timeout=TIMEOUT
    )
    pop.quit()
    with pytest.raises(ssl.SSLCertVerificationError):
        read_greeting(dovecot.pop3s_port, tls=untrusted_certs.client_context())


def test_dropped_message_shows_up_in_stat(dovecot: Dovecot, mailbox: Mailbox) -> None:
    dovecot.drop_message(mailbox.user, message("dropped"))
    pop = pop3_login(dovecot, mailbox.user, mailbox.password)
    try:
        assert pop.stat()[0] == 1
        assert b"body of dropped" in pop.retr(1)[1]
    finally:
        pop.quit()


def test_failed_logins_do_not_slow_down_the_next_one(dovecot: Dovecot, mailbox: Mailbox) -> None:
    started = time.monotonic()
    for _ in range(2):
        with pytest.raises(poplib.error_proto):
            pop3_login(dovecot, mailbox.user, "wrong").quit()
    pop3_login(dovecot, mailbox.user, mailbox.password).quit()
    # Dovecot's penalty (auth_failure_delay, 2 s a failure) would make it 4 s at least:
    # the bound tells the two apart on any load, it measures no speed.
    assert time.monotonic() - started < 3.5


# --- Postfix -----------------------------------------------------------------------------


def test_postfix_ports_offer_what_their_docstring_says(postfix: Postfix, certs: Certs) -> None:
    context = certs.client_context()
    with smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=TIMEOUT) as smtp:
        assert {"STARTTLS", "AUTH"} <= ehlo_keywords(smtp)
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=TIMEOUT) as submission:
        before_tls = ehlo_keywords(submission)
        assert "STARTTLS" in before_tls
        assert "AUTH" not in before_tls
        submission.starttls(context=context)
        assert "AUTH" in ehlo_keywords(submission)
    with smtplib.SMTP_SSL(
        postfix.host, postfix.smtps_port, context=context, timeout=TIMEOUT
    ) as smtps:
        assert "AUTH" in ehlo_keywords(smtps)


def test_submission_delivers_into_dovecot(
    postfix: Postfix, dovecot: Dovecot, certs: Certs, mailbox: Mailbox
) -> None:
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=TIMEOUT) as client:
        client.starttls(context=certs.client_context())
        client.login(mailbox.user, mailbox.password)
        client.sendmail(mailbox.address, [mailbox.address], message("submitted"))
    postfix.wait_for_delivery(mailbox.user, 1)
    pop = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=certs.client_context(), timeout=TIMEOUT
    )
    try:
        pop.user(mailbox.user)
        pop.pass_(mailbox.password)
        assert b"body of submitted" in pop.retr(1)[1]
    finally:
        pop.quit()


def test_postfix_refuses_unknown_recipients_and_unauthenticated_submission(
    postfix: Postfix, certs: Certs, mailbox: Mailbox
) -> None:
    with smtplib.SMTP(postfix.host, postfix.smtp_port, timeout=TIMEOUT) as client:
        refused = client.sendmail(
            mailbox.address, [mailbox.address, postfix.refused_recipient], message("partly")
        )
    assert refused[postfix.refused_recipient][0] == 550
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=TIMEOUT) as client:
        client.starttls(context=certs.client_context())
        with pytest.raises(smtplib.SMTPRecipientsRefused) as unauthenticated:
            client.sendmail(mailbox.address, [mailbox.address], message("no auth"))
    assert unauthenticated.value.recipients[mailbox.address][0] == 554
    assert len(postfix.wait_for_delivery(mailbox.user, 1)) == 1


# --- aiosmtpd ----------------------------------------------------------------------------


def test_aiosmtpd_records_mail_and_commands(
    aiosmtpd_factory: Callable[..., AioSmtpd], certs: Certs
) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users={"u": "p"})
    server.refuse_rcpt.add("refused@example.test")
    with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client:
        assert "AUTH" not in ehlo_keywords(client)  # only after TLS, by default
        client.starttls(context=certs.client_context())
        client.login("u", "p")
        refused = client.sendmail(
            "a@example.test", ["ok@example.test", "refused@example.test"], message("rec")
        )
    assert refused["refused@example.test"][0] == 550
    [received] = server.received
    assert received.rcpt_tos == ("ok@example.test",)
    assert received.login == "u"
    assert b"body of rec" in received.data
    verbs = [line.split(" ")[0].upper() for line in server.commands]
    assert verbs.index("STARTTLS") < verbs.index("AUTH")
    assert not any("body of" in line for line in server.commands)


def test_aiosmtpd_fault_injection(aiosmtpd_factory: Callable[..., AioSmtpd]) -> None:
    server = aiosmtpd_factory()
    server.mail_reply = "451 4.3.0 try later"
    with (
        smtplib.SMTP(server.host, server.port, timeout=TIMEOUT) as client,
        pytest.raises(smtplib.SMTPSenderRefused) as sender_refused,
    ):
        client.sendmail("a@example.test", ["b@example.test"], message("later"))
    assert sender_refused.value.smtp_code == 451
    server.mail_reply = None
    server.drop_during_data = True
    client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPServerDisconnected)):
        client.sendmail("a@example.test", ["b@example.test"], message("dropped"))
    client.close()
    assert server.received == []


@pytest.mark.parametrize(
    ("options", "complaint"),
    [({"expired": True}, "expired"), ({"identities": ("mail.other.test",)}, "mismatch")],
)
def test_make_certs_makes_broken_leaves_on_request(
    aiosmtpd_factory: Callable[..., AioSmtpd],
    tmp_path: Path,
    options: dict[str, Any],
    complaint: str,
) -> None:
    broken = make_certs(tmp_path, "broken", **options)
    server = aiosmtpd_factory(tls_context=broken.server_context(), implicit_tls=True)
    with pytest.raises(ssl.SSLCertVerificationError) as failure:
        read_greeting(server.port, tls=broken.client_context())
    assert complaint in str(failure.value.verify_message)


# --- Secret Service ----------------------------------------------------------------------

KEYRING_ROUND_TRIP = """
import keyring
keyring.set_password("mailcli-smoke", "alice", "s3cret")
print(type(keyring.get_keyring()).__module__, keyring.get_password("mailcli-smoke", "alice"))
"""


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )


def test_keyring_round_trips_through_the_secret_service(secret_service: SecretService) -> None:
    done = run_python(KEYRING_ROUND_TRIP, secret_service.subprocess_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["keyring.backends.SecretService", "s3cret"]


def test_locked_secret_service_makes_keyring_fail() -> None:
    require(*NEEDS["secret_service"])
    with SecretService(locked=True) as locked:
        done = run_python(KEYRING_ROUND_TRIP, locked.subprocess_env())
    assert done.returncode != 0
    assert "keyring.errors" in done.stderr


# --- The launcher itself -----------------------------------------------------------------


def test_require_skips_locally_but_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require("no-such-binary-for-mailcli-tests")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require("no-such-binary-for-mailcli-tests")


def test_command_line_launcher_serves_until_stdin_closes() -> None:
    require(*NEEDS["dovecot"], *NEEDS["postfix"], need_root=True)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "--no-keyring"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None and launcher.stdin is not None
    try:
        info = json.loads(launcher.stdout.readline())
        assert read_greeting(info["pop3_port"]).startswith(b"+OK")
        assert read_greeting(info["smtp_port"]).startswith(b"220")
        assert Path(info["ca_pem"]).is_file()
    finally:
        launcher.stdin.close()
        assert launcher.wait(timeout=30) == 0, launcher.stderr.read() if launcher.stderr else ""
    assert not Path(info["mail_root"]).exists()  # work dirs are removed on exit
