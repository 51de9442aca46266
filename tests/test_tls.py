"""TLS: verified by default, host name checked, TLS 1.2 at least, --insecure warns."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.servers.certs import Certs, make_certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]


def send(server: AioSmtpd, *extra: str) -> tuple[int, str]:
    result = run_cli(
        [
            "send",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--from",
            "a@x.test",
            "--to",
            "b@x.test",
            "--body",
            "x",
            *extra,
        ]
    )
    return result.code, result.stderr


def test_a_certificate_for_another_host_name_is_77(
    aiosmtpd_factory: Factory, tmp_path: Path
) -> None:
    other = make_certs(tmp_path, "other", identities=("mail.other.test",))
    server = aiosmtpd_factory(tls_context=other.server_context())
    code, err = send(server, "--cafile", str(other.ca_pem))  # trusted CA, wrong name
    assert code == 77
    assert "not trusted" in err and ("mismatch" in err or "match" in err)
    assert not server.saw_command("MAIL")


def test_verification_is_on_without_any_option(aiosmtpd_factory: Factory, certs: Certs) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context())
    code, err = send(server)  # the test CA is not in the system store
    assert code == 77 and "not trusted" in err


def test_tls_below_1_2_is_refused(aiosmtpd_factory: Factory, certs: Certs) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.load_cert_chain(certs.cert_pem, certs.key_pem)
    with warnings.catch_warnings():  # deprecated on purpose: this is the old server
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        old.set_ciphers("DEFAULT@SECLEVEL=0")
    except ssl.SSLError:
        pytest.fail("this OpenSSL cannot even configure a TLS 1.1 server")
    server = aiosmtpd_factory(tls_context=old)
    code, err = send(server, "--cafile", str(certs.ca_pem))
    assert code == 69
    assert "TLS handshake" in err
    assert not server.saw_command("MAIL")


def test_insecure_warns_on_every_use(
    aiosmtpd_factory: Factory, untrusted_certs: Certs, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    server = aiosmtpd_factory(tls_context=untrusted_certs.server_context())
    pop = [
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.pop3_port),
        "--user",
        mailbox.user,
        "--insecure",
    ]
    env = {"MAILCLI_PASSWORD": mailbox.password}
    runs = [
        run_cli(
            [
                "send",
                "--host",
                "127.0.0.1",
                "--port",
                str(server.port),
                "--from",
                "a@x.test",
                "--to",
                "b@x.test",
                "--body",
                "x",
                "--insecure",
            ]
        ),
        run_cli(["stat", *pop], env=env),
        run_cli(["check", "pop3", *pop], env=env),
        run_cli(["fetch", "--dry-run", *pop], env=env),
    ]
    for result in runs:
        assert result.code == 0, result.stderr
        assert "mailcli: warning: --insecure" in result.stderr
    assert "NOT verified: --insecure" in run_cli(["stat", "--trace", *pop], env=env).stderr
