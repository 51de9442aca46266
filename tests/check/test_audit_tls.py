"""`check --audit`'s TLS probes (`tls-versions`, `weak-ciphers`, `certificate`) against
the test Postfix (its defaults accept TLS 1.0/1.1 and anonymous suites), the test and a
hardened Dovecot, and tests/servers/tlsserver.py for TLS 1.0 on POP3, an expiring
certificate, a missing intermediate and a wrong name."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mailcli.check.cert_probe import name_matches, public_key_size
from mailcli.check.findings import AuditTarget
from mailcli.check.tls_probes import (
    TLS_PROBES,
    probe_certificate,
    probe_tls_versions,
    probe_weak_ciphers,
)
from mailcli.endpoint import MailProtocol, SecurityMode
from tests.helpers import ROOT, audit_target, only
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.ports import HOST
from tests.servers.postfix import Postfix
from tests.servers.sclient import s_client
from tests.servers.tlsserver import ServerCert, TlsServer, issue, server_context


def target(
    protocol: MailProtocol,
    port: int,
    security: SecurityMode,
    cafile: Path | None,
    host: str = HOST,
) -> AuditTarget:
    return audit_target(protocol, port, security, cafile=cafile, host=host)


def test_postfix_defaults_accept_tls_1_0_and_anonymous_suites(
    postfix: Postfix, certs: Certs
) -> None:
    """Postfix 3.7's `smtpd_tls_protocols = >=TLSv1` on a client port: RFC 8996 says fail."""
    for port, security in ((postfix.submission_port, "starttls"), (postfix.smtps_port, "tls")):
        audit = target("smtp", port, security, certs.ca_pem)  # type: ignore[arg-type]
        versions = only(probe_tls_versions(audit), "tls-versions")
        assert versions.level == "fail", versions
        assert "TLSv1.0" in versions.summary and "TLSv1.1" in versions.summary
        assert "smtpd_tls_protocols" in (versions.fix or "")
        assert "== TLS handshake done: TLSv1" in versions.evidence
        ciphers = only(probe_weak_ciphers(audit), "weak-ciphers")
        assert ciphers.level == "fail" and "aNULL" in ciphers.summary, ciphers
        assert "smtpd_tls_exclude_ciphers" in (ciphers.fix or "")
        assert only(probe_certificate(audit), "certificate").level == "ok"


def test_dovecot_refuses_old_tls_and_warns_only_for_cbc_sha1(
    dovecot: Dovecot, certs: Certs
) -> None:
    audit = target("pop3", dovecot.pop3_port, "starttls", certs.ca_pem)
    versions = only(probe_tls_versions(audit), "tls-versions")
    assert versions.level == "ok", versions  # Dovecot 2.3.19: ssl_min_protocol = TLSv1.2
    assert any("handshake refused" in line for line in versions.evidence)
    ciphers = only(probe_weak_ciphers(audit), "weak-ciphers")
    assert ciphers.level == "warn" and ciphers.summary == "accepts CBC with SHA-1", ciphers
    certificate = only(probe_certificate(audit), "certificate")
    assert certificate.level == "ok", certificate
    assert "== key EC 256 bits" in certificate.evidence


def test_hardened_dovecot_passes_every_tls_probe(hardened_dovecot: Dovecot, certs: Certs) -> None:
    for port, security in (
        (hardened_dovecot.pop3_port, "starttls"),
        (hardened_dovecot.pop3s_port, "tls"),
    ):
        audit = target("pop3", port, security, certs.ca_pem)  # type: ignore[arg-type]
        levels = {f.id: f.level for probe in TLS_PROBES for f in probe(audit)}
        assert levels == {"tls-versions": "ok", "weak-ciphers": "ok", "certificate": "ok"}


def weak_server(cert: ServerCert, protocol: str = "pop3", **options: object) -> TlsServer:
    return TlsServer(server_context(cert, oldest="TLSv1"), protocol=protocol, **options)  # type: ignore[arg-type]


def test_a_pop3_server_accepting_tls_1_0_fails(tmp_path: Path) -> None:
    cert = issue(tmp_path, "old")
    with weak_server(cert) as server:
        audit = target("pop3", server.port, "starttls", cert.ca_pem)
        versions = only(probe_tls_versions(audit), "tls-versions")
    assert versions.level == "fail", versions
    assert "ssl_min_protocol = TLSv1.2" in (versions.fix or "")
    assert "C: STLS" in versions.evidence


def test_old_tls_on_port_25_is_a_warning(tmp_path: Path) -> None:
    """Port 25 cannot be bound here for a real server; the grading is what differs."""
    from mailcli.check.tls_probes import _grade_versions

    on_25 = target("smtp", 25, "starttls", None)
    assert _grade_versions(on_25, ["TLSv1.0"], [], ()).level == "warn"
    assert _grade_versions(on_25._replace(protocol="pop3"), ["TLSv1.0"], [], ()).level == "fail"


def test_an_expiring_certificate_warns(tmp_path: Path) -> None:
    cert = issue(tmp_path, "expiring", days=10)
    with TlsServer(server_context(cert), implicit=True) as server:
        finding = only(
            probe_certificate(target("pop3", server.port, "tls", cert.ca_pem)), "certificate"
        )
    assert finding.level == "warn", finding
    assert "expires in" in finding.summary


def test_a_missing_intermediate_fails_and_a_full_chain_passes(tmp_path: Path) -> None:
    broken = issue(tmp_path, "broken", intermediate=True, send_intermediate=False)
    complete = issue(tmp_path, "complete", intermediate=True)
    results = {}
    for cert in (broken, complete):
        with TlsServer(server_context(cert), protocol="smtp") as server:
            audit = target("smtp", server.port, "starttls", cert.ca_pem)
            results[cert] = only(probe_certificate(audit), "certificate")
    assert results[broken].level == "fail", results[broken]
    assert "intermediate certificate is missing" in results[broken].summary
    assert len([line for line in results[broken].evidence if "presented" in line]) == 1
    assert results[complete].level == "ok", results[complete]
    assert len([line for line in results[complete].evidence if "presented" in line]) == 2


def test_a_certificate_for_another_name_fails(tmp_path: Path) -> None:
    cert = issue(tmp_path, "other", identities=("mail.example.invalid",))
    with TlsServer(server_context(cert), implicit=True) as server:
        finding = only(
            probe_certificate(target("pop3", server.port, "tls", cert.ca_pem)), "certificate"
        )
    assert finding.level == "fail", finding
    assert f"{HOST} is not among its names" in finding.summary
    assert "== names mail.example.invalid" in finding.evidence


def test_name_matching() -> None:
    assert name_matches("mail.example.com", ["*.example.com"])
    assert not name_matches("a.mail.example.com", ["*.example.com"])
    assert name_matches("127.0.0.1", ["localhost", "127.0.0.1"])
    assert not name_matches("127.0.0.1", ["127.0.0.2"])


def test_key_size_is_read_from_the_certificate() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    assert public_key_size(cert.public_bytes(serialization.Encoding.DER)) == ("RSA", 1024)


_PROBE_IN_CHILD = """
import json, sys
from mailcli.check.findings import AuditTarget
from mailcli.check.tls_probes import probe_tls_versions
from tests.helpers import make_endpoint
endpoint = make_endpoint("pop3", int(sys.argv[1]), security="starttls")
(finding,) = probe_tls_versions(AuditTarget("pop3", endpoint))
print(json.dumps(finding.as_json()))
"""


def test_a_version_this_openssl_cannot_offer_is_skipped_not_refused(tmp_path: Path) -> None:
    """An OpenSSL configured without TLS 1.0/1.1 (here through OPENSSL_CONF) says
    nothing about the server, which does accept TLS 1.0."""
    conf = tmp_path / "openssl.cnf"
    conf.write_text(
        "openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = defaults\n"
        "[defaults]\nProtocol = ALL,-TLSv1,-TLSv1.1\n"
    )
    cert = issue(tmp_path, "old")
    with weak_server(cert) as server:
        child = subprocess.run(
            [sys.executable, "-c", _PROBE_IN_CHILD, str(server.port)],
            env={**os.environ, "OPENSSL_CONF": str(conf)},
            cwd=ROOT,  # where `tests.helpers` imports from
            capture_output=True,
            timeout=30,
            check=True,
        )
    finding = json.loads(child.stdout)
    assert finding["level"] == "skipped", finding
    assert finding["summary"].startswith("not testable here")
    assert "NO_PROTOCOLS_AVAILABLE" in finding["summary"]


# A Dovecot offering every suite (security level 0): without ssl_dh it can only do the
# anonymous suites over ECDH; with Debian's dh.pem, over DH as well.
EVERY_SUITE = "ssl_cipher_list = ALL:@SECLEVEL=0\n"
DEBIAN_DH = Path("/usr/share/dovecot/dh.pem")


def s_client_accepts(port: int, suite: str) -> bool:
    """An independent check: does `openssl s_client` complete a TLS 1.2 handshake with
    `suite` (and no other) on the implicit-TLS `port`?"""
    output = s_client(port, "-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0")
    return f"Cipher    : {suite}" in output


def test_anonymous_ecdh_without_dh_parameters_fails(certs: Certs) -> None:
    """Dovecot without DH parameters cannot finish an anonymous DH handshake, and a
    client offering both kinds at once got a dropped handshake: each kind is tried alone."""
    with Dovecot(certs, {"alice": "alice-pw"}, extra_settings=EVERY_SUITE) as server:
        assert s_client_accepts(server.pop3s_port, "AECDH-AES256-SHA")
        assert not s_client_accepts(server.pop3s_port, "ADH-AES256-GCM-SHA384")
        for port, security in ((server.pop3_port, "starttls"), (server.pop3s_port, "tls")):
            audit = target("pop3", port, security, certs.ca_pem)  # type: ignore[arg-type]
            ciphers = only(probe_weak_ciphers(audit), "weak-ciphers")
            assert ciphers.level == "fail", ciphers
            assert "anonymous ECDH" in ciphers.summary, ciphers
            assert "anonymous DH" not in ciphers.summary, ciphers
            assert any(line.startswith("== accepted: TLSv1.2 AECDH-") for line in ciphers.evidence)


def test_anonymous_dh_with_dh_parameters_fails(certs: Certs) -> None:
    settings = f"{EVERY_SUITE}ssl_dh = <{DEBIAN_DH}\n"
    with Dovecot(certs, {"alice": "alice-pw"}, extra_settings=settings) as server:
        assert s_client_accepts(server.pop3s_port, "ADH-AES256-GCM-SHA384")
        audit = target("pop3", server.pop3s_port, "tls", certs.ca_pem)
        ciphers = only(probe_weak_ciphers(audit), "weak-ciphers")
    assert ciphers.level == "fail", ciphers
    assert "anonymous DH" in ciphers.summary and "anonymous ECDH" in ciphers.summary, ciphers
    assert any(line.startswith("== accepted: TLSv1.2 ADH-") for line in ciphers.evidence)
