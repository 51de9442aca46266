"""TLS client certificates (--client-cert, --client-key; keys client_cert, client_key)
against Dovecot (ssl_verify_client_cert, auth_ssl_require_client_cert; with
auth_ssl_username_from_cert for SASL EXTERNAL), Postfix (smtpd_tls_ask_ccert, and
permit_tls_clientcerts with relay_clientcerts on the port-25 listener) and openssl
s_server -Verify (a handshake that requires one), certificates from a CA the servers
trust for clients; SASL EXTERNAL; the passphrase of an encrypted key; what `check` says
about the server's certificate request.

The documented statuses: a server that refuses a login or a handshake for want of a
(trusted) certificate is 77, whether it says so in the protocol (Dovecot's -ERR) or with
a TLS alert (certificate required, unknown CA); Postfix's client restriction refusing the
recipient is a refused recipient like any other (67). A certificate or key file missing
is 66; one that is not PEM, a key that does not match, an encrypted key without a
passphrase, a key without a certificate are 78: one line each, before anything is sent.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import Mailcli, MemoryKeyring, run_cli
from tests.servers import NEEDS, require
from tests.servers.accounts import Account, Security
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.externalsmtpd import ExternalSmtpd
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix
from tests.servers.procs import make_workdir
from tests.servers.stack import DEFAULT_USERS
from tests.servers.tlstrust import (
    ClientCA,
    ClientCert,
    RequiringServer,
    dovecot_settings,
    encrypt_key,
    fingerprint,
    postfix_settings,
)


@pytest.fixture(scope="module")
def client_dir() -> Iterator[Path]:
    directory = make_workdir("clientcerts-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def client_ca(client_dir: Path) -> ClientCA:
    return ClientCA(client_dir)


@pytest.fixture(scope="module")
def stranger_cert(client_dir: Path) -> ClientCert:
    """A certificate from a CA no server trusts."""
    return ClientCA(client_dir, "strangers").issue("alice")


@pytest.fixture(scope="module")
def alice_cert(client_ca: ClientCA) -> ClientCert:
    return client_ca.issue("alice")


@pytest.fixture(scope="module")
def cert_dovecot(certs: Certs, client_ca: ClientCA) -> Iterator[Dovecot]:
    require(*NEEDS["dovecot"], need_root=True)
    settings = dovecot_settings(client_ca.ca_pem, external=True)
    with Dovecot(certs, DEFAULT_USERS, extra_settings=settings) as server:
        yield server


@pytest.fixture(scope="module")
def cert_postfix(
    cert_dovecot: Dovecot, client_ca: ClientCA, alice_cert: ClientCert
) -> Iterator[Postfix]:
    require(*NEEDS["postfix"], need_root=True)
    settings = postfix_settings(client_ca.ca_pem, [fingerprint(alice_cert.cert_pem)])
    permit = "permit_tls_clientcerts,reject"  # on the port-25 listener: no mynetworks
    options = {"smtp": {"smtpd_client_restrictions": permit}}
    with Postfix(cert_dovecot, settings=settings, service_options=options) as server:
        yield server


def _pop3(dovecot: Dovecot, security: Security) -> tuple[Account, Mailbox]:
    mailbox = make_mailbox(dovecot, "cc")
    return Account.pop3(dovecot, mailbox.user, mailbox.password, security=security), mailbox


def _cert_args(cert: ClientCert) -> list[str]:
    return ["--client-cert", str(cert.cert_pem), "--client-key", str(cert.key_pem)]


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_dovecot_takes_the_login_only_with_a_trusted_certificate(
    cert_dovecot: Dovecot, client_ca: ClientCA, client_dir: Path, security: Security
) -> None:
    account, mailbox = _pop3(cert_dovecot, security)
    own = client_ca.issue(mailbox.user)  # Dovecot takes the user name from the certificate
    stranger_cert = ClientCA(client_dir, "strangers").issue(mailbox.user)
    with_cert = Mailcli(account)("stat", *_cert_args(own))
    assert with_cert.code == 0, with_cert.stderr
    without = Mailcli(account)("stat")
    assert without.code == 77, without.stderr
    stranger = Mailcli(account)("stat", *_cert_args(stranger_cert))
    assert stranger.code == 77, stranger.stderr
    for result in (without, stranger):
        assert [line for line in result.stderr.splitlines() if "error:" in line], result.stderr


def test_one_file_holding_key_and_certificate_and_the_account_keys(
    cert_dovecot: Dovecot, client_ca: ClientCA, tmp_path: Path
) -> None:
    account, mailbox = _pop3(cert_dovecot, "tls")
    alice_cert = client_ca.issue(mailbox.user)
    combined = Mailcli(account)("stat", "--client-cert", str(alice_cert.combined_pem))
    assert combined.code == 0, combined.stderr
    home = tmp_path / "home"  # the test's HOME: "~" in the keys is expanded
    shutil.copy(alice_cert.cert_pem, home / "cert.pem")
    shutil.copy(alice_cert.key_pem, home / "key.pem")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.a]\nuser = "{mailbox.user}"\n[accounts.a.pop3]\nhost = "{account.host}"\n'
        f'port = {account.port}\nsecurity = "tls"\ncafile = "{account.cafile}"\n'
        'client_cert = "~/cert.pem"\nclient_key = "~/key.pem"\n'
    )
    env = {"MAILCLI_CONFIG": str(config), "MAILCLI_PASSWORD": mailbox.password}
    result = run_cli(["stat"], env=env)
    assert result.code == 0, result.stderr


def test_postfix_relays_for_a_trusted_certificate_without_auth(
    cert_postfix: Postfix, cert_dovecot: Dovecot, alice_cert: ClientCert, stranger_cert: ClientCert
) -> None:
    mailbox = make_mailbox(cert_dovecot, "cc")
    account = Account(
        "127.0.0.1", cert_postfix.smtp_port, None, None, "starttls", cert_postfix.certs.ca_pem
    )
    send = ("send", "--from", mailbox.address, "--to", mailbox.address, "--body", "by cert")
    result = Mailcli(account)(*send, *_cert_args(alice_cert))
    assert result.code == 0, result.stderr
    cert_postfix.wait_for_delivery(mailbox.user)
    for refused in (Mailcli(account)(*send), Mailcli(account)(*send, *_cert_args(stranger_cert))):
        assert refused.code == 67, refused.stderr  # the recipient refused, as any 5xx
        assert "554 5.7.1" in refused.stderr and "Access denied" in refused.stderr
    assert len(cert_postfix.messages(mailbox.user)) == 1


def test_a_server_requiring_a_certificate_at_the_handshake_is_77_without_one(
    certs: Certs, client_ca: ClientCA, stranger_cert: ClientCert
) -> None:
    """openssl s_server -Verify: the handshake ends with an alert (TLS 1.3: certificate
    required, or unknown CA for a stranger's), which reaches mailcli at its first read."""
    with RequiringServer(certs, client_ca.ca_pem) as server:
        account = Account("127.0.0.1", server.port, "u", "pw", "tls", certs.ca_pem)
        for cert in ([], _cert_args(stranger_cert)):
            result = Mailcli(account)("stat", "--timeout", "10", *cert)
            assert result.code == 77, result.stderr
            assert "client certificate" in result.stderr, result.stderr


def _no_server(*options: str) -> tuple[int, str]:
    """Implicit TLS to a closed port: the context (and its certificate) comes first."""
    args = ["stat", "--host", "127.0.0.1", "--port", str(free_port()), "--security", "tls"]
    result = run_cli([*args, "--user", "u", *options], env={"MAILCLI_PASSWORD": "pw"})
    errors = [line for line in result.stderr.splitlines() if line.startswith("mailcli: error:")]
    assert len(errors) == 1, result.stderr
    return result.code, errors[0]


def test_file_problems_are_66_or_78_before_connecting(
    alice_cert: ClientCert, stranger_cert: ClientCert, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    code, error = _no_server("--client-cert", str(missing))
    assert (code, "no such file") == (66, error.split(": ")[-1]), error
    code, error = _no_server(
        "--client-cert", str(alice_cert.cert_pem), "--client-key", str(missing)
    )
    assert code == 66 and str(missing) in error, error
    code, error = _no_server(
        "--client-cert", str(alice_cert.cert_pem), "--client-key", str(stranger_cert.key_pem)
    )
    assert code == 78 and "does not belong" in error, error
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    code, error = _no_server("--client-cert", str(garbage))
    assert code == 78 and "not a PEM" in error, error
    code, error = _no_server("--client-cert", str(alice_cert.cert_pem))  # no key in it
    assert code == 78, error
    code, error = _no_server("--client-key", str(alice_cert.key_pem))
    assert code == 78 and "without --client-cert" in error, error


def test_an_encrypted_key_without_a_passphrase_is_78_and_never_prompts(
    client_ca: ClientCA, tmp_path: Path
) -> None:
    cert = client_ca.issue("carol")
    encrypted = tmp_path / "encrypted-key.pem"
    encrypt_key(cert.key_pem, encrypted, "s3cret-passphrase")
    code, error = _no_server("--client-cert", str(cert.cert_pem), "--client-key", str(encrypted))
    assert code == 78 and "encrypted" in error, error


# SASL EXTERNAL: the identity the certificate proves, only when asked for and offered.


def test_pop3_external_logs_in_as_the_certificate_without_a_password(
    cert_dovecot: Dovecot, client_ca: ClientCA, client_dir: Path
) -> None:
    account, mailbox = _pop3(cert_dovecot, "tls")
    own = client_ca.issue(mailbox.user)
    no_user = replace(account, user=None, password=None)  # neither is needed
    result = Mailcli(no_user)("--trace", "stat", "--auth", "external", *_cert_args(own))
    assert result.code == 0, result.stderr
    assert "~> AUTH EXTERNAL ********" in result.stderr.splitlines(), result.stderr
    assert not any(line.startswith(("-> USER", "-> PASS")) for line in result.stderr.splitlines())
    cert_dovecot.wait_for_log(f"Login: user=<{mailbox.user}>, method=EXTERNAL")
    stranger = ClientCA(client_dir, "strangers").issue(mailbox.user)
    refused = Mailcli(no_user)("stat", "--auth", "external", *_cert_args(stranger))
    assert refused.code == 77, refused.stderr


def test_pop3_external_without_a_certificate_is_78_before_auth(cert_dovecot: Dovecot) -> None:
    account, _ = _pop3(cert_dovecot, "tls")
    result = Mailcli(account)("--trace", "stat", "--auth", "external")
    assert result.code == 78, result.stderr
    sent = [line for line in result.stderr.splitlines() if line.startswith(("->", "~>"))]
    assert not any("AUTH" in line for line in sent), result.stderr


def test_pop3_external_not_offered_is_69(dovecot: Dovecot, client_ca: ClientCA) -> None:
    account, mailbox = _pop3(dovecot, "tls")
    result = Mailcli(account)(
        "stat", "--auth", "external", *_cert_args(client_ca.issue(mailbox.user))
    )
    assert result.code == 69, result.stderr
    assert "EXTERNAL" in result.stderr


def test_pop3_the_account_key_auth_external(
    cert_dovecot: Dovecot, client_ca: ClientCA, tmp_path: Path
) -> None:
    account, mailbox = _pop3(cert_dovecot, "tls")
    own = client_ca.issue(mailbox.user)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.a.pop3]\nhost = "{account.host}"\nport = {account.port}\n'
        f'security = "tls"\ncafile = "{account.cafile}"\nauth = "external"\n'
        f'client_cert = "{own.cert_pem}"\nclient_key = "{own.key_pem}"\n'
    )
    result = run_cli(["stat"], env={"MAILCLI_CONFIG": str(config)})
    assert result.code == 0, result.stderr


@pytest.fixture
def external_smtpd(certs: Certs, client_ca: ClientCA) -> Iterator[ExternalSmtpd]:
    with ExternalSmtpd(certs, client_ca.ca_pem) as server:
        yield server


def test_smtp_external_sends_as_the_certificate(
    external_smtpd: ExternalSmtpd, alice_cert: ClientCert, certs: Certs
) -> None:
    account = Account(
        external_smtpd.host, external_smtpd.port, None, None, "starttls", certs.ca_pem
    )
    send = ("send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x")
    result = Mailcli(account)("--trace", *send, "--auth", "external", *_cert_args(alice_cert))
    assert result.code == 0, result.stderr
    assert external_smtpd.auth_lines == [["EXTERNAL", "="]]
    assert external_smtpd.received == [("a@example.test", "alice")]
    unasked = Mailcli(account)(*send, *_cert_args(alice_cert))  # never chosen unasked
    assert unasked.code == 0, unasked.stderr
    assert len(external_smtpd.auth_lines) == 1
    missing = Mailcli(account)(*send, "--auth", "external")
    assert missing.code == 78, missing.stderr
    assert len(external_smtpd.auth_lines) == 1


def test_smtp_external_not_offered_is_69(postfix: Postfix, alice_cert: ClientCert) -> None:
    account = Account(
        "127.0.0.1", postfix.submission_port, None, None, "starttls", postfix.certs.ca_pem
    )
    send = ("send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x")
    result = Mailcli(account)(*send, "--auth", "external", *_cert_args(alice_cert))
    assert result.code == 69, result.stderr
    assert "EXTERNAL" in result.stderr


# An encrypted key's passphrase: MAILCLI_CLIENT_KEY_PASSPHRASE, else the keyring entry
# client-key:PATH, never the mail password's sources, never argv.

PASSPHRASE = "s3cret-passphrase"


def _encrypted_cert(client_ca: ClientCA, user: str, tmp_path: Path) -> list[str]:
    cert = client_ca.issue(user)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypt_key(cert.key_pem, encrypted, PASSPHRASE)
    return ["--client-cert", str(cert.cert_pem), "--client-key", str(encrypted)]


def test_the_passphrase_from_the_environment_unlocks_the_key(
    cert_dovecot: Dovecot, client_ca: ClientCA, tmp_path: Path
) -> None:
    account, mailbox = _pop3(cert_dovecot, "tls")
    args = _encrypted_cert(client_ca, mailbox.user, tmp_path)
    env = {"MAILCLI_CLIENT_KEY_PASSPHRASE": PASSPHRASE}
    result = Mailcli(account)("--trace", "stat", *args, env=env)
    assert result.code == 0, result.stderr
    assert PASSPHRASE not in result.stderr + result.stdout
    wrong = Mailcli(account)("stat", *args, env={"MAILCLI_CLIENT_KEY_PASSPHRASE": "nope"})
    assert wrong.code == 78, wrong.stderr
    assert "wrong passphrase" in wrong.stderr


def test_the_passphrase_from_the_keyring_and_never_the_mail_password(
    cert_dovecot: Dovecot, client_ca: ClientCA, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    account, mailbox = _pop3(cert_dovecot, "tls")
    args = _encrypted_cert(client_ca, mailbox.user, tmp_path)
    missing = Mailcli(account)("stat", *args)  # MAILCLI_PASSWORD is set: not the passphrase
    assert missing.code == 78, missing.stderr
    key = f"client-key:{tmp_path / 'encrypted-key.pem'}"
    assert "MAILCLI_CLIENT_KEY_PASSPHRASE" in missing.stderr and key in missing.stderr
    memory_keyring.set_password("mailcli", key, PASSPHRASE)
    result = Mailcli(account)("stat", *args)
    assert result.code == 0, result.stderr


# check: whether the server asks for a client certificate, and which CAs it names.


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_check_reports_the_certificate_request_and_its_ca_names(
    cert_dovecot: Dovecot, dovecot: Dovecot, security: Security, tmp_path: Path
) -> None:
    asking, _ = _pop3(cert_dovecot, security)
    report = Mailcli(asking).json("check", "pop3")
    request = report["client_certificate"]
    assert request["requested"] is True, request
    assert any("O = mailcli clients" in name for name in request["ca_names"]), request
    plain, _ = _pop3(dovecot, security)
    assert Mailcli(plain).json("check", "pop3")["client_certificate"]["requested"] is False
    table = Mailcli(asking)("check", "pop3", env={"PATH": str(tmp_path)})  # no openssl
    assert table.code == 0, table.stderr
    assert "unknown: openssl is not installed" in table.stdout


def test_check_smtp_reports_postfix_asking(cert_postfix: Postfix) -> None:
    account = Account(
        "127.0.0.1", cert_postfix.smtp_port, None, None, "starttls", cert_postfix.certs.ca_pem
    )
    request = Mailcli(account).json("check", "smtp")["client_certificate"]
    assert request["requested"] is True, request


def test_the_passphrase_variable_never_reaches_a_child() -> None:
    from mailcli.auth.childenv import child_environment

    environ = {"MAILCLI_CLIENT_KEY_PASSPHRASE": PASSPHRASE, "PATH": "/usr/bin"}
    assert child_environment(environ) == {"PATH": "/usr/bin"}


def test_sendmail_unlocks_the_accounts_encrypted_key(
    cert_postfix: Postfix, cert_dovecot: Dovecot, alice_cert: ClientCert, tmp_path: Path
) -> None:
    """sendmail (no connection options) presents the account's client certificate, its
    key unlocked by the passphrase chain, to Postfix relaying for that certificate."""
    mailbox = make_mailbox(cert_dovecot, "cc")
    encrypted = tmp_path / "alice-key.pem"
    encrypt_key(alice_cert.key_pem, encrypted, PASSPHRASE)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.a]\nfrom = "{mailbox.address}"\n[accounts.a.smtp]\nhost = "127.0.0.1"\n'
        f'port = {cert_postfix.smtp_port}\nsecurity = "starttls"\n'
        f'cafile = "{cert_postfix.certs.ca_pem}"\n'
        f'client_cert = "{alice_cert.cert_pem}"\nclient_key = "{encrypted}"\n'
    )
    env = {"MAILCLI_CONFIG": str(config), "MAILCLI_CLIENT_KEY_PASSPHRASE": PASSPHRASE}
    message = f"From: {mailbox.address}\nTo: {mailbox.address}\nSubject: cert\n\nbody\n"
    sent = run_cli(["sendmail", "-i", mailbox.address], env=env, input=message)
    assert sent.code == 0, sent.stderr
    cert_postfix.wait_for_delivery(mailbox.user)
