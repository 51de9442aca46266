"""`mailcli send` against aiosmtpd with fault injection: every failure has its exit code,
and nothing secret or unasked-for reaches the server."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.smtpd import AioSmtpd

PASSWORD = "Secr3t-pw!"
USERS = {"alice": PASSWORD}


MESSAGE: tuple[str, ...] = ("--from", "Alice <alice@example.test>", "--to", "bob@example.test")
MESSAGE += ("--subject", "hi", "--body", "hello")


def send(server: AioSmtpd, *extra: str, certs: Certs | None = None, **env: str) -> Result:
    cafile = None if certs is None else certs.ca_pem
    account = Account.smtpd(server, password=PASSWORD, cafile=cafile)
    return Mailcli(account)("send", *MESSAGE, *extra, env=env)


def secret_forms() -> list[str]:
    return [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode(),
    ]


Factory = Callable[..., AioSmtpd]


def test_plain_send_records_envelope_and_reports_per_recipient(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    result = send(
        server,
        "--security",
        "none",
        "--cc",
        "carl@example.test",
        "--envelope-from",
        "bounce@example.test",
    )
    assert result.code == 0, result.stderr
    assert [r.envelope_from for r in server.received] == ["bounce@example.test"]
    assert server.received[0].rcpt_tos == ("bob@example.test", "carl@example.test")
    assert result.stdout.splitlines()[:2] == [
        "bob@example.test\taccepted\t-",
        "carl@example.test\taccepted\t-",
    ]
    assert result.stdout.splitlines()[2].startswith("(message)\tsent\t250 ")


def test_starttls_and_auth_with_masked_trace(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users=USERS)
    result = send(server, "--user", "alice", "--trace", certs=certs)
    assert result.code == 0, result.stderr
    assert server.received[0].login == "alice"
    trace = result.stderr
    assert "-> STARTTLS" in trace and "== TLS established: TLSv1.3" in trace
    assert "~> AUTH PLAIN ********" in trace and "~> [message: " in trace
    for secret in secret_forms():
        assert secret not in trace


def test_auth_login_forced(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users=USERS)
    result = send(server, "--user", "alice", "--auth", "login", "--trace", certs=certs)
    assert result.code == 0, result.stderr
    assert "~> AUTH LOGIN ********" in result.stderr
    assert not any(secret in result.stderr for secret in secret_forms())


def test_implicit_tls(aiosmtpd_factory: Factory, certs: Certs) -> None:
    # aiosmtpd does not count implicit TLS as TLS for auth_require_tls; it is TLS all the same.
    server = aiosmtpd_factory(
        tls_context=certs.server_context(), implicit_tls=True, users=USERS, auth_require_tls=False
    )
    result = send(server, "--security", "tls", "--user", "alice", "--trace", certs=certs)
    assert result.code == 0, result.stderr
    assert "<~ 220 " in result.stderr


def test_wrong_password_is_77(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users=USERS)
    result = send(server, "--user", "alice", certs=certs, MAILCLI_PASSWORD="wrong")
    assert result.code == 77
    assert "authentication as 'alice' failed: 535" in result.stderr
    assert server.received == []


def test_untrusted_certificate_is_77(
    aiosmtpd_factory: Factory, untrusted_certs: Certs, certs: Certs
) -> None:
    server = aiosmtpd_factory(tls_context=untrusted_certs.server_context(), users=USERS)
    result = send(server, "--user", "alice", certs=certs)
    assert result.code == 77
    assert "not trusted" in result.stderr
    assert not server.saw_command("AUTH") and server.received == []


def test_insecure_skips_verification_and_warns(
    aiosmtpd_factory: Factory, untrusted_certs: Certs
) -> None:
    server = aiosmtpd_factory(tls_context=untrusted_certs.server_context())
    result = send(server, "--insecure")
    assert result.code == 0, result.stderr
    assert "mailcli: warning: --insecure" in result.stderr


def test_starttls_required_but_not_offered_sends_no_credentials(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory(users=USERS, auth_require_tls=False)
    result = send(server, "--user", "alice")
    assert result.code == 69
    assert "does not offer STARTTLS" in result.stderr
    assert not server.saw_command("AUTH") and not server.saw_command("MAIL")
    assert not any(secret in " ".join(server.commands) for secret in secret_forms())


def test_one_recipient_refused_others_delivered_exit_67(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    server.refuse_rcpt = {"bad@example.test"}
    result = send(server, "--security", "none", "--to", "bad@example.test", "--json")
    assert result.code == 67
    import json

    document: dict[str, Any] = json.loads(result.stdout)
    assert document["accepted"] == ["bob@example.test"]
    assert document["refused"]["bad@example.test"]["code"] == 550
    assert document["reply"].startswith("250")
    assert server.received[0].rcpt_tos == ("bob@example.test",)
    assert "1 of 2 recipients refused" in result.stderr


def test_all_recipients_refused_sends_nothing(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    server.refuse_rcpt = {"bob@example.test"}
    result = send(server, "--security", "none")
    assert result.code == 67
    assert server.received == [] and not server.saw_command("DATA")


@pytest.mark.parametrize(
    ("reply", "code"), [("451 4.3.0 try again later", 75), ("553 5.7.1 sender not allowed", 69)]
)
def test_a_refused_mail_from_ends_the_session_before_any_recipient(
    aiosmtpd_factory: Factory, reply: str, code: int
) -> None:
    """A temporary (75) or permanent (69) refusal of the sender: one error line quoting
    the server's reply, nothing on stdout, no RCPT or DATA, nothing delivered, and the
    session closed with QUIT."""
    server = aiosmtpd_factory()
    server.mail_reply = reply
    result = send(server, "--security", "none")
    assert result.code == code
    errors = [line for line in result.stderr.splitlines() if line.startswith("mailcli: error:")]
    assert len(errors) == 1 and reply in errors[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert server.received == []
    assert [line.split(" ", 1)[0].upper() for line in server.commands][-2:] == ["MAIL", "QUIT"]


@pytest.mark.parametrize(
    ("reply", "code"),
    [("554 5.6.0 malformed", 65), ("552 5.3.4 too big", 69), ("452 4.3.1 full", 75)],
)
def test_data_replies(aiosmtpd_factory: Factory, reply: str, code: int) -> None:
    server = aiosmtpd_factory()
    server.data_reply = reply
    result = send(server, "--security", "none")
    assert result.code == code
    assert reply in result.stderr


def test_421_and_disconnect_mid_data_is_75(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    server.drop_during_data = True
    result = send(server, "--security", "none")
    assert result.code == 75
    assert server.received == []


def test_smtputf8_used_when_needed_and_offered(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    result = send(server, "--security", "none", "--to", "Üser <üser@example.test>")
    assert result.code == 0, result.stderr
    assert "SMTPUTF8" in server.received[0].mail_options
    assert "üser@example.test".encode() in server.received[0].data


def test_smtputf8_needed_but_not_offered_is_65(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory(smtputf8=False)
    result = send(server, "--security", "none", "--rcpt", "üser@example.test")
    assert result.code == 65
    assert "SMTPUTF8" in result.stderr
    assert server.received == []


def test_connection_refused_is_69_and_unknown_host_68() -> None:
    from tests.servers.ports import HOST, free_port

    closed_port = Account(HOST, free_port(), security="none")
    refused = Mailcli(closed_port)("send", "--from", "a@x", "--to", "b@x", "--body", "x")
    assert refused.code == 69 and "refused" in refused.stderr
    no_such_host = Account("no-such-host.invalid", 587)  # 587: the default without --port
    unknown = Mailcli(no_such_host)("send", "--from", "a@x", "--to", "b@x", "--body", "x")
    assert unknown.code == 68


def login_without_password(server: AioSmtpd, certs: Certs) -> Mailcli:
    """alice over STARTTLS with the test CA, and no password in the environment."""
    return Mailcli(Account.smtpd(server, "alice", cafile=certs.ca_pem))


def test_no_password_anywhere_and_no_tty_is_78(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users=USERS)
    alice = login_without_password(server, certs)
    result = alice("send", "--from", "a@x", "--to", "b@x", "--body", "x")
    assert result.code == 78
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mailcli: error: no password for alice@{server.host}")
    for way in ("MAILCLI_PASSWORD", "password_command", "mailcli password set"):
        assert way in line
    assert server.received == [] and not server.saw_command("AUTH")


def test_password_command_supplies_the_password(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users=USERS)
    alice = login_without_password(server, certs)
    command = f"echo '{PASSWORD}'"
    result = alice(
        "send", "--from", "a@x", "--to", "b@x", "--body", "x", "--password-command", command
    )
    assert result.code == 0, result.stderr
    assert server.received[0].login == "alice"


def test_dry_run_connects_to_nothing(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    result = send(server, "--dry-run", "--bcc", "hidden@example.test")
    assert result.code == 0
    assert result.stdout.startswith(
        "MAIL FROM:<alice@example.test>\nRCPT TO:<bob@example.test>\n"
        "RCPT TO:<hidden@example.test>\n\n"
    )
    assert "hidden@example.test" not in result.stdout.split("\n\n", 1)[1]
    assert server.commands == []


def test_quiet_prints_nothing_on_success(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory()
    result = send(server, "--security", "none", "-q")
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
