"""`check smtp --audit` against Exim 4.96 built with OpenSSL (Debian's source and
configuration, scripts/build-exim-openssl; tests/servers/exim.py's ``build="openssl"``).

At Debian's defaults the OpenSSL build already refuses TLS 1.0 and 1.1 (OpenSSL 3's
security level), and still accepts CBC-SHA1 suites; a cipher list an admin lowers for
old clients (``DEFAULT:@SECLEVEL=0``) brings TLS 1.0/1.1 back. The audit gives the same
findings three times, each TLS verdict is confirmed with openssl s_client, and the
catalogue's OpenSSL-build forms, applied as given, turn the findings `ok`. Each build
refuses the other's form of the fix, which is why Exim's entries label both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import Finding
from tests.helpers import assert_one_verdict, audit_target, finding_levels, findings_by_id
from tests.servers import skip_unless_ready
from tests.servers.certs import Certs
from tests.servers.exim import HARDENED, HARDENED_OPENSSL, Exim, missing

# What the audit finds on the OpenSSL build at Debian's defaults (the software,
# trusted-network and certificate notes aside); the GnuTLS build differs in tls-versions.
DEFAULT_LEVELS = {
    "smuggling": "ok",
    "starttls-injection": "ok",
    "open-relay": "ok",
    "user-enumeration": "info",
    "auth-before-tls": "ok",
    "unauth-pipelining": "warn",
    "null-sender": "ok",
    "size-limit": "ok",
    "login-delay": "skipped",  # no AUTH configured: not applicable, not incomplete
    "tls-versions": "ok",
    "weak-ciphers": "warn",
}
FIXED = {"unauth-pipelining": "ok", "weak-ciphers": "ok"}
# A cipher list lowered for old clients: OpenSSL then negotiates TLS 1.0 and 1.1 again.
LEGACY = {"tls_require_ciphers": "DEFAULT:@SECLEVEL=0"}
OLD_PROTOCOLS = "DEFAULT:@SECLEVEL=0"  # what s_client needs to offer TLS 1.0/1.1
CBC_SHA1 = "ECDHE-ECDSA-AES256-SHA"  # the session certificate is ECDSA


@pytest.fixture(scope="module")
def exim(certs: Certs) -> Iterator[Exim]:
    skip_unless_ready(missing("openssl"))
    with Exim(certs, build="openssl") as server:
        yield server


@pytest.fixture(scope="module")
def default_audits(exim: Exim, certs: Certs) -> list[list[Finding]]:
    return [audit(exim, certs) for _ in range(3)]


def audit(server: Exim, certs: Certs) -> list[Finding]:
    target = audit_target(
        "smtp", server.smtp_port, "starttls", cafile=certs.ca_pem, audit_rcpt=server.audit_address
    )
    return run_audit(target)


def openssl_form(fix: str | None) -> str:
    """The OpenSSL build's part of an Exim fix ("Exim: GnuTLS build (Debian's): ...;
    OpenSSL build: ..."), or the whole fix when it does not tell builds apart."""
    assert fix is not None and fix.startswith("Exim: "), fix
    return fix.partition("OpenSSL build: ")[2] or fix


def test_three_audits_give_the_same_findings(default_audits: list[list[Finding]]) -> None:
    assert_one_verdict(default_audits, DEFAULT_LEVELS, "Exim")


def test_the_server_is_the_openssl_build(exim: Exim) -> None:
    # GnuTLS (Debian's build) negotiates AES-CCM suites at its defaults; OpenSSL's
    # default list has none.
    assert not exim.handshakes("-tls1_2", "ECDHE-ECDSA-AES128-CCM")
    assert exim.handshakes("-tls1_2", "ECDHE+AESGCM")


def test_tls_findings_are_true(exim: Exim) -> None:
    for version in ("-tls1", "-tls1_1"):
        assert not exim.handshakes(version, OLD_PROTOCOLS), version
    assert exim.handshakes("-tls1_2", CBC_SHA1)


def test_the_fixes_given_are_the_openssl_forms(default_audits: list[list[Finding]]) -> None:
    fixes = {f.id: f.fix for f in default_audits[0]}
    weak = openssl_form(fixes["weak-ciphers"])
    assert weak.startswith("tls_require_ciphers = ECDHE+AESGCM:ECDHE+CHACHA20"), weak
    assert "pipelining_connect_advertise_hosts = :" in openssl_form(fixes["unauth-pipelining"])
    for setting, value in HARDENED.items():  # the GnuTLS form stays, labelled
        assert f"{setting} = {value}" in (fixes["weak-ciphers"] or "") + (
            fixes["unauth-pipelining"] or ""
        ), setting


def test_the_fixes_turn_the_findings_ok(certs: Certs) -> None:
    skip_unless_ready(missing("openssl"))
    with Exim(certs, HARDENED_OPENSSL, build="openssl") as hardened:
        runs = [finding_levels(audit(hardened, certs), DEFAULT_LEVELS) for _ in range(3)]
        assert not hardened.handshakes("-tls1", OLD_PROTOCOLS)
        assert not hardened.handshakes("-tls1_2", CBC_SHA1)
        assert hardened.handshakes("-tls1_2", "ECDHE+AESGCM")
    assert runs[0] == {**DEFAULT_LEVELS, **FIXED}, runs[0]
    assert runs[1] == runs[0] and runs[2] == runs[0], runs


def test_old_protocols_found_and_fixed_on_a_lowered_cipher_list(certs: Certs) -> None:
    skip_unless_ready(missing("openssl"))
    with Exim(certs, LEGACY, build="openssl") as legacy:
        findings = findings_by_id(audit(legacy, certs))
        assert legacy.handshakes("-tls1", OLD_PROTOCOLS)
        assert legacy.handshakes("-tls1_1", OLD_PROTOCOLS)
    versions = findings["tls-versions"]
    assert versions.level == "fail", versions
    fix = openssl_form(versions.fix)
    assert fix.startswith("openssl_options = +no_tlsv1 +no_tlsv1_1"), fix
    fixed_settings = {**LEGACY, "openssl_options": HARDENED_OPENSSL["openssl_options"]}
    with Exim(certs, fixed_settings, build="openssl") as fixed:
        assert finding_levels(audit(fixed, certs))["tls-versions"] == "ok"
        assert not fixed.handshakes("-tls1", OLD_PROTOCOLS)
        assert not fixed.handshakes("-tls1_1", OLD_PROTOCOLS)


def test_the_gnutls_form_makes_the_openssl_build_refuse_its_config(certs: Certs) -> None:
    """Why Exim's TLS entries label each build's form: the OpenSSL build does not start
    with the GnuTLS priority string, as the GnuTLS build does not with openssl_options
    (test_audit_exim)."""
    skip_unless_ready(missing("openssl"))
    gnutls_form = {"tls_require_ciphers": HARDENED["tls_require_ciphers"]}
    with pytest.raises(RuntimeError) as refused, Exim(certs, gnutls_form, build="openssl"):
        pass
    assert "tls_require_ciphers invalid" in str(refused.value), refused.value
    assert "no cipher match" in str(refused.value), refused.value
