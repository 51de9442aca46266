"""`check pop3 --audit` against Cyrus POP3 3.6.1 (tests/servers/cyrus.py) with Debian's
imapd.conf and hardened with the fixes the audit gives for Cyrus.

Each fail and warn is checked again here without the audit's code: a raw socket for the
cleartext conversation and the greeting, `openssl s_client` for TLS (Cyrus logs to
syslog, which the test namespace does not have). The audits connect from 127.0.0.2.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import AuditTarget
from mailcli.check.software import fix_for
from mailcli.endpoint import SecurityMode
from tests.helpers import audit_target, finding_levels
from tests.servers import skip_unless_ready
from tests.servers.certs import Certs
from tests.servers.cyrus import Cyrus, missing
from tests.servers.ports import HOST
from tests.servers.sclient import s_client

OUTSIDER = "127.0.0.2"
# The fixes the audit gives for Cyrus, as /etc/imapd.conf lines.
HARDENED_CYRUS = """\
allowplaintext: no
allowapop: no
serverinfo: off
tls_ciphers: ECDHE+AESGCM:ECDHE+CHACHA20
"""
EXPECTED_STLS_PORT = {
    "stls-injection": "ok",
    "auth-before-tls": "fail",
    "apop": "warn",
    "banner": "warn",
    "login-delay": "ok",
    "tls-versions": "ok",  # Cyrus 3.6's default tls_versions: tls1_2 tls1_3
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
ALL_OK = {
    finding: "ok" if level in ("fail", "warn") else level
    for finding, level in EXPECTED_STLS_PORT.items()
}


@pytest.fixture(scope="module")
def cyrus(certs: Certs) -> Iterator[Cyrus]:
    skip_unless_ready(missing())
    with Cyrus(certs) as server:
        yield server


@pytest.fixture(scope="module")
def hardened_cyrus(certs: Certs) -> Iterator[Cyrus]:
    skip_unless_ready(missing())
    with Cyrus(certs, HARDENED_CYRUS) as server:
        yield server


def target(port: int, security: SecurityMode, certs: Certs) -> AuditTarget:
    return audit_target("pop3", port, security, cafile=certs.ca_pem, source=OUTSIDER)


@pytest.mark.parametrize("port_kind", ["stls", "tls"])
def test_three_audits_give_the_same_findings(cyrus: Cyrus, certs: Certs, port_kind: str) -> None:
    if port_kind == "stls":
        port, security, expected = cyrus.pop3_port, "starttls", EXPECTED_STLS_PORT
    else:
        port, security, expected = cyrus.pop3s_port, "tls", EXPECTED_TLS_PORT
    for _ in range(3):
        audit = target(port, security, certs)  # type: ignore[arg-type]
        findings = run_audit(audit)
        assert finding_levels(findings) == expected, findings
        assert not any(f.incomplete for f in findings)
        assert audit.limiter.most_held <= 2
        assert "Cyrus" in next(f for f in findings if f.id == "software").summary
        for finding in findings:
            if finding.level in ("fail", "warn"):
                assert (finding.fix or "").startswith("Cyrus: "), finding
                assert "no fix verified" not in (finding.fix or ""), finding


def test_the_cleartext_findings_are_true(cyrus: Cyrus) -> None:
    """A raw socket: the greeting names the version and carries an APOP timestamp, and
    USER is taken in clear."""
    with socket.create_connection((HOST, cyrus.pop3_port), source_address=(OUTSIDER, 0)) as raw:
        raw.settimeout(10)
        reader = raw.makefile("rb")
        greeting = reader.readline()
        assert b"Cyrus POP3 3.6.1" in greeting and b"@" in greeting.split(b"<")[-1]
        raw.sendall(b"USER nobody-here\r\nQUIT\r\n")
        assert reader.readline().startswith(b"+OK")


def test_cbc_with_sha1_is_accepted(cyrus: Cyrus) -> None:
    suites = "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
    assert "-AES256-SHA" in s_client(cyrus.pop3s_port, "-tls1_2", "-cipher", suites)


def test_the_fixes_are_the_hardened_settings() -> None:
    for key, setting in (
        ("auth-before-tls:pop3", "allowplaintext: no"),
        ("apop", "allowapop: no"),
        ("banner", "serverinfo: off"),
        ("weak-ciphers", "tls_ciphers: ECDHE+AESGCM:ECDHE+CHACHA20"),
    ):
        fix = fix_for(key, "cyrus") or ""
        assert setting in fix and setting in HARDENED_CYRUS, (key, fix)


def test_the_hardened_cyrus_passes(hardened_cyrus: Cyrus, certs: Certs) -> None:
    findings = run_audit(target(hardened_cyrus.pop3_port, "starttls", certs))
    assert finding_levels(findings) == ALL_OK, findings
    findings = run_audit(target(hardened_cyrus.pop3s_port, "tls", certs))
    assert finding_levels(findings) == {
        **ALL_OK,
        "stls-injection": "skipped",
        "auth-before-tls": "skipped",
    }, findings
