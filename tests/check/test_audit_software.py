"""Which software answered the audit, and the fix catalogue's rules: a fix only where it
was verified on that software, "unknown server: general advice" otherwise."""

from __future__ import annotations

import pytest

from mailcli.check.software import FIXES, fix_for, identify


@pytest.mark.parametrize(
    ("protocol", "greeting", "capabilities", "software"),
    [
        ("smtp", b"220 mail.example ESMTP Postfix (Debian/GNU)", {}, "postfix"),
        ("smtp", b"220 mail.example ESMTP Exim 4.96 Mon, 7 Dec 2026", {}, "exim"),
        ("smtp", b"220 mail.example ESMTP OpenSMTPD", {}, "opensmtpd"),
        ("smtp", b"220 mail.example ESMTP Sendmail 8.17.1/8.17.1", {}, "sendmail"),
        # Rewritten banners: what only one MTA offers in EHLO.
        ("smtp", b"220 mail.example ESMTP", {"pipeconnect": "", "size": "1"}, "exim"),
        ("smtp", b"220 mail.example ESMTP", {"etrn": "", "vrfy": ""}, "postfix"),
        ("smtp", b"220 mail.example ESMTP", {"size": "1"}, "unknown"),
        ("pop3", b"+OK Dovecot ready.", {}, "dovecot"),
        ("pop3", b"+OK Hello there.", {"implementation": "Courier Mail Server"}, "courier"),
        ("pop3", b"+OK example Cyrus POP3 v3.6.1 server ready", {}, "cyrus"),
        ("pop3", b"+OK ready", {}, "unknown"),
    ],
)
def test_identify(
    protocol: str, greeting: bytes, capabilities: dict[str, str], software: str
) -> None:
    assert identify(protocol, greeting, capabilities) == software


def test_an_unknown_server_gets_general_advice() -> None:
    assert fix_for("tls-versions", "unknown") == (
        "unknown server: general advice: accept TLS 1.2 and 1.3 only (RFC 8996)"
    )


def test_known_software_without_a_verified_fix_is_told_so() -> None:
    fix = fix_for("tls-versions", "sendmail") or ""
    assert fix.startswith("Sendmail: no fix verified for this software; general advice: ")


def test_a_cause_picks_its_own_entry_and_falls_back_to_the_finding() -> None:
    assert "pipelining_connect_advertise_hosts" in (
        fix_for("unauth-pipelining:pipe-connect", "exim") or ""
    )
    assert fix_for("auth-before-tls:port-25", "postfix") == "Postfix: smtpd_tls_auth_only = yes"
    assert fix_for("no-such-finding", "postfix") is None


def test_exims_tls_fixes_give_each_build_its_form() -> None:
    """Each Exim build refuses the other's TLS syntax (test_audit_exim*), so the entries
    give the GnuTLS priority string and the OpenSSL options, each labelled."""
    gnutls_form = "tls_require_ciphers = NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-RSA:-SHA1"
    openssl_forms = {
        "tls-versions": "openssl_options = +no_tlsv1 +no_tlsv1_1 (",
        "weak-ciphers": "tls_require_ciphers = ECDHE+AESGCM:ECDHE+CHACHA20 (",
    }
    for finding, openssl_form in openssl_forms.items():
        fix = fix_for(finding, "exim") or ""
        gnutls, _, openssl = fix.partition("; OpenSSL build: ")
        assert gnutls == f"Exim: GnuTLS build (Debian's): {gnutls_form}", fix
        assert openssl.startswith(openssl_form), fix


def test_every_entry_has_general_advice() -> None:
    assert all("general" in entries for entries in FIXES.values())
