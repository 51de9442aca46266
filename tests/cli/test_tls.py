"""TLS: verified by default, host name checked, TLS 1.2 at least, --insecure warns."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.certs import Certs, make_certs
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]


def sending(server: AioSmtpd, *extra: str) -> Result:
    """A short message, STARTTLS by default, trusting only what ``extra`` says."""
    return Mailcli(Account.smtpd(server))(
        "send", "--from", "a@x.test", "--to", "b@x.test", "--body", "x", *extra
    )


def send(server: AioSmtpd, *extra: str) -> tuple[int, str]:
    result = sending(server, *extra)
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
    aiosmtpd_factory: Factory, untrusted_certs: Certs, pop3_account: Account
) -> None:
    server = aiosmtpd_factory(tls_context=untrusted_certs.server_context())
    pop = Mailcli(replace(pop3_account, cafile=None))  # not the test CA: --insecure gets in
    runs = [
        sending(server, "--insecure"),
        pop("stat", "--insecure"),
        pop("check", "pop3", "--insecure"),
        pop("fetch", "--dry-run", "--insecure"),
    ]
    for result in runs:
        assert result.code == 0, result.stderr
        assert "mailcli: warning: --insecure" in result.stderr
    assert "NOT verified: --insecure" in pop("stat", "--trace", "--insecure").stderr
