"""`check pop3 --audit` against Courier POP3 1.0.16 (tests/servers/courier.py) with
Debian's defaults (MAXPERIP=4: four connections from one address at most) and hardened
with the fixes the audit gives for Courier.

Each fail and warn is checked again here without the audit's code: a raw socket for the
cleartext conversation, `openssl s_client` for TLS, Courier's log for the logins. The
audits connect from 127.0.0.2, another address than the server's.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import AuditTarget
from mailcli.check.pop3_probes import probe_auth_before_tls, probe_stls_injection
from mailcli.check.software import fix_for
from mailcli.check.tls_probes import probe_tls_versions, probe_weak_ciphers
from mailcli.endpoint import SecurityMode
from tests.helpers import audit_target, finding_levels, only
from tests.servers import skip_unless_ready
from tests.servers.certs import Certs
from tests.servers.courier import Courier, missing
from tests.servers.ports import HOST
from tests.servers.sclient import s_client

OUTSIDER = "127.0.0.2"
# The fixes the audit gives for Courier, as /etc/courier/pop3d-ssl lines.
HARDENED_COURIER = """\
POP3_STARTTLS=NO
POP3_TLS_REQUIRED=1
TLS_PRIORITY="NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-SHA1:-RSA"
"""
# Debian's Courier as the audit sees it, per port (three runs must all say this).
EXPECTED_STLS_PORT = {
    "stls-injection": "fail",
    "auth-before-tls": "fail",
    "apop": "ok",
    "banner": "ok",
    "login-delay": "ok",  # PAM's delay after a failed login
    "tls-versions": "fail",
    "weak-ciphers": "warn",
    "certificate": "ok",
    "software": "info",
    "trusted-network": "info",
}
EXPECTED_TLS_PORT = {
    **EXPECTED_STLS_PORT,
    "stls-injection": "skipped",
    "auth-before-tls": "skipped",
}


@pytest.fixture(scope="module")
def courier(certs: Certs) -> Iterator[Courier]:
    skip_unless_ready(missing())
    with Courier(certs) as server:
        yield server


@pytest.fixture(scope="module")
def hardened_courier(certs: Certs) -> Iterator[Courier]:
    skip_unless_ready(missing())
    with Courier(certs, HARDENED_COURIER) as server:
        yield server


def target(port: int, security: SecurityMode, certs: Certs) -> AuditTarget:
    return audit_target("pop3", port, security, cafile=certs.ca_pem, source=OUTSIDER)


@pytest.mark.parametrize("port_kind", ["stls", "tls"])
def test_three_audits_give_the_same_findings(
    courier: Courier, certs: Certs, port_kind: str
) -> None:
    """At Courier's MAXPERIP=4 nothing is skipped for the connection limit: the audit
    keeps two connections open at most, and every run says the same."""
    if port_kind == "stls":
        port, security, expected = courier.pop3_port, "starttls", EXPECTED_STLS_PORT
    else:
        port, security, expected = courier.pop3s_port, "tls", EXPECTED_TLS_PORT
    for _ in range(3):
        audit = target(port, security, certs)  # type: ignore[arg-type]
        findings = run_audit(audit)
        assert finding_levels(findings) == expected, findings
        assert not any(f.incomplete for f in findings)
        assert audit.limiter.most_held <= 2
        assert "Courier" in next(f for f in findings if f.id == "software").summary
    assert "maxperip" not in courier.log().lower()


def test_the_injected_capa_is_answered_inside_tls(courier: Courier) -> None:
    """Checked with a raw socket: CAPA sent in clear in the STLS write is answered after
    the handshake, unasked."""
    with socket.create_connection((HOST, courier.pop3_port), source_address=(OUTSIDER, 0)) as raw:
        raw.settimeout(10)
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        raw.sendall(b"STLS\r\nCAPA\r\n")
        assert reader.readline().startswith(b"+OK")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(raw) as tls:
            assert tls.recv(4096).startswith(b"+OK Here's what I can do")


def test_user_is_taken_in_clear(courier: Courier) -> None:
    with socket.create_connection((HOST, courier.pop3_port), source_address=(OUTSIDER, 0)) as raw:
        raw.settimeout(10)
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"USER nobody-here\r\nQUIT\r\n")
        assert reader.readline().startswith(b"+OK")


def test_tls_findings_are_true(courier: Courier, certs: Certs) -> None:
    audit = target(courier.pop3s_port, "tls", certs)
    versions = only(probe_tls_versions(audit), "tls-versions")
    assert "TLSv1.0" in versions.summary and "TLSv1.1" in versions.summary, versions
    for version in ("-tls1", "-tls1_1"):
        assert "Cipher is" in s_client(
            courier.pop3s_port, version, "-cipher", "DEFAULT:@SECLEVEL=0"
        )
    ciphers = only(probe_weak_ciphers(audit), "weak-ciphers")
    assert ciphers.summary == "accepts CBC with SHA-1", ciphers
    (accepted,) = [line for line in ciphers.evidence if line.startswith("== accepted:")]
    suite = accepted.split()[-1]  # e.g. ECDHE-ECDSA-AES256-SHA
    shown = s_client(courier.pop3s_port, "-tls1_2", "-cipher", f"{suite}:@SECLEVEL=0")
    assert f"Cipher    : {suite}" in shown


def test_login_delay_tries_three_logins_and_no_more(courier: Courier, certs: Certs) -> None:
    before = courier.log().count("LOGIN FAILED, user=audit-")
    findings = run_audit(target(courier.pop3s_port, "tls", certs))
    assert finding_levels(findings)["login-delay"] == "ok"
    assert courier.log().count("LOGIN FAILED, user=audit-") - before == 3


def test_the_fixes_name_courier_and_its_settings(courier: Courier, certs: Certs) -> None:
    findings = run_audit(target(courier.pop3_port, "starttls", certs))
    for finding in findings:
        if finding.level in ("fail", "warn"):
            assert (finding.fix or "").startswith("Courier: "), finding
            assert "no fix verified" not in (finding.fix or ""), finding
    for key, setting in (
        ("stls-injection", "POP3_STARTTLS=NO"),
        ("auth-before-tls:pop3", "POP3_TLS_REQUIRED=1"),
        ("tls-versions", "-VERS-TLS1.0:-VERS-TLS1.1"),
        ("weak-ciphers", "-SHA1"),
    ):
        fix = fix_for(key, "courier") or ""
        assert setting in fix and setting.split('"')[0] in HARDENED_COURIER, (key, fix)


def test_the_hardened_courier_passes(hardened_courier: Courier, certs: Certs) -> None:
    """Each fix applied turns its finding ok: the cleartext findings on port 110, the
    TLS ones on 995 (where clients go once STLS is off)."""
    clear = target(hardened_courier.pop3_port, "starttls", certs)
    assert only(probe_stls_injection(clear), "stls-injection").level == "ok"
    auth = only(probe_auth_before_tls(clear), "auth-before-tls")
    assert auth.level == "ok", auth
    assert "S: -ERR TLS required to log in." in auth.evidence
    findings = run_audit(target(hardened_courier.pop3s_port, "tls", certs))
    assert finding_levels(findings) == {
        **EXPECTED_TLS_PORT,
        "tls-versions": "ok",
        "weak-ciphers": "ok",
    }, findings


def test_a_connection_the_server_drops_leaves_the_audit_incomplete(
    courier: Courier, certs: Certs
) -> None:
    """With Courier's four connections per address held (as an audit run with a larger
    --audit-connections would), couriertcpd accepts and at once resets the next: the TLS
    probes could not run, which must read as an incomplete audit, not a quiet skip."""
    held = [
        socket.create_connection((HOST, courier.pop3s_port), source_address=(OUTSIDER, 0))
        for _ in range(4)
    ]
    try:
        findings = run_audit(target(courier.pop3s_port, "tls", certs), [probe_tls_versions])
    finally:
        for sock in held:
            sock.close()
    versions = findings[0]
    assert versions.id == "tls-versions" and versions.level == "skipped", findings
    assert versions.incomplete, versions
    assert "reset" in versions.summary.lower(), versions
    (incomplete,) = [f for f in findings if f.id == "audit-incomplete"]
    assert "tls-versions" in incomplete.summary
