"""`check smtp --audit` against a real Exim 4.96 (Debian's GnuTLS build, tests/servers/exim.py)
with Debian's defaults, and with the fixes the audit gives applied.

At Debian's defaults (smtp_accept_max 20, smtp_max_synprot_errors 3, domain literals
refused, PIPECONNECT advertised) the audit gives the same findings three times over,
runs every probe, and each warn/fail is confirmed without mailcli: openssl s_client for
TLS, a raw socket for pipelining, Exim's own log for relaying. The hardened server runs
exactly the fix texts the audit gave (Exim's entries in the fix catalogue) and those
findings turn `ok`.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import Finding
from mailcli.check.limiter import ConnectionLimiter
from tests.helpers import audit_target
from tests.servers import skip_unless_ready
from tests.servers.certs import Certs
from tests.servers.exim import HARDENED, Exim, missing
from tests.servers.ports import HOST

# What the audit finds at Debian's defaults (the software, trusted-network and the
# certificate's notes aside); the hardened server differs only where its fixes apply.
DEFAULT_LEVELS = {
    "smuggling": "ok",  # Debian's 4.96-15+deb12u4 and later carry the CVE-2023-51766 fix
    "starttls-injection": "ok",
    "open-relay": "ok",
    "user-enumeration": "info",
    "auth-before-tls": "ok",
    "unauth-pipelining": "warn",
    "null-sender": "ok",
    "size-limit": "ok",
    "login-delay": "skipped",  # no AUTH configured: not applicable, not incomplete
    "tls-versions": "fail",
    "weak-ciphers": "warn",
}
FIXED = {"unauth-pipelining": "ok", "tls-versions": "ok", "weak-ciphers": "ok"}


@pytest.fixture(scope="module")
def exim(certs: Certs) -> Iterator[Exim]:
    skip_unless_ready(missing())
    with Exim(certs) as server:
        yield server


@pytest.fixture(scope="module")
def hardened_exim(certs: Certs) -> Iterator[Exim]:
    skip_unless_ready(missing())
    with Exim(certs, HARDENED) as server:
        yield server


def audit(server: Exim, certs: Certs, limiter: ConnectionLimiter | None = None) -> list[Finding]:
    target = audit_target(
        "smtp",
        server.smtp_port,
        "starttls",
        cafile=certs.ca_pem,
        audit_rcpt=server.audit_address,
        limiter=limiter,
    )
    return run_audit(target)


def levels(findings: list[Finding]) -> dict[str, str]:
    return {f.id: f.level for f in findings if f.id in DEFAULT_LEVELS}


@pytest.fixture(scope="module")
def default_audits(exim: Exim, certs: Certs) -> list[list[Finding]]:
    return [audit(exim, certs) for _ in range(3)]


def test_three_audits_give_the_same_findings(default_audits: list[list[Finding]]) -> None:
    runs = [levels(findings) for findings in default_audits]
    assert runs[0] == DEFAULT_LEVELS, runs[0]
    assert runs[1] == runs[0] and runs[2] == runs[0], runs


def test_every_probe_ran_within_exims_limits(
    default_audits: list[list[Finding]], exim: Exim
) -> None:
    for findings in default_audits:
        ids = {f.id for f in findings}
        assert "audit-incomplete" not in ids, [f for f in findings if f.incomplete]
        assert next(f for f in findings if f.id == "software").summary.startswith(
            "server software: Exim"
        )
    log = exim.mainlog()
    assert "too many connections" not in log
    assert "too many syntax or protocol errors" not in log


def test_open_relay_is_graded_on_the_forms_exim_let_through(
    default_audits: list[list[Finding]], exim: Exim
) -> None:
    relay = {f.id: f for f in default_audits[0]}["open-relay"]
    assert "15 of 16 forms tested" in relay.summary, relay.summary
    assert "domain literals not allowed" in "\n".join(relay.evidence)
    # Exim's own account: each run's 15 relay RCPTs refused (ACL, syntax or unqualified).
    refusals = [line for line in exim.mainlog().splitlines() if "relaytest" in line]
    assert len(refusals) == 3 * 15, refusals
    assert all(("rejected" in line or "syntax error" in line) for line in refusals)


def test_tls_findings_are_true(exim: Exim) -> None:
    for version in ("-tls1", "-tls1_1"):
        assert _s_client(exim, version, "DEFAULT:@SECLEVEL=0"), version
    assert _s_client(exim, "-tls1_2", "ECDHE-ECDSA-AES256-SHA")  # CBC with SHA-1


def test_unauth_pipelining_is_exims_pipeconnect(
    default_audits: list[list[Finding]], exim: Exim
) -> None:
    with socket.create_connection((HOST, exim.smtp_port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"HELO raw.invalid\r\nNOOP\r\n")
        assert reader.readline().startswith(b"250 ") and reader.readline().startswith(b"250 ")
        sock.sendall(b"EHLO raw.invalid\r\n")
        ehlo = [reader.readline()]
        while ehlo[-1].startswith(b"250-"):
            ehlo.append(reader.readline())
        assert b"250-PIPECONNECT\r\n" in ehlo, ehlo
    finding = {f.id: f for f in default_audits[0]}["unauth-pipelining"]
    assert "PIPE_CONNECT" in finding.summary
    assert "pipelining_connect_advertise_hosts = :" in (finding.fix or "")
    assert "smtp_enforce_sync = true" not in (finding.fix or "")  # on already: no fix


def test_the_fixes_given_are_the_hardened_servers_settings(
    default_audits: list[list[Finding]],
) -> None:
    fixes = {f.id: f.fix or "" for f in default_audits[0]}
    for setting, value in HARDENED.items():
        assert any(f"{setting} = {value}" in fix for fix in fixes.values()), setting
    for finding_id in FIXED:
        assert fixes[finding_id].startswith("Exim: "), fixes[finding_id]
    assert "openssl_options" not in fixes["tls-versions"].split("(")[0]


def test_the_fixes_turn_the_findings_ok(hardened_exim: Exim, certs: Certs) -> None:
    runs = [levels(audit(hardened_exim, certs)) for _ in range(3)]
    assert runs[0] == {**DEFAULT_LEVELS, **FIXED}, runs[0]
    assert runs[1] == runs[0] and runs[2] == runs[0], runs
    assert not _s_client(hardened_exim, "-tls1", "DEFAULT:@SECLEVEL=0")
    assert not _s_client(hardened_exim, "-tls1_2", "ECDHE-ECDSA-AES256-SHA")


def _s_client(server: Exim, version: str, ciphers: str) -> bool:
    """Whether `openssl s_client` completes a handshake with this version and suites."""
    done = subprocess.run(
        [
            "openssl", "s_client", "-connect", f"{HOST}:{server.smtp_port}",
            "-starttls", "smtp", version, "-cipher", ciphers, "-brief",
        ],
        input=b"QUIT\r\n",
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return done.returncode == 0 and b"CONNECTION ESTABLISHED" in done.stderr


def test_openssl_options_makes_debians_exim_refuse_its_config(certs: Certs) -> None:
    """Why the catalogue gives Exim a GnuTLS priority string: the OpenSSL-build fix
    (openssl_options) stops Debian's GnuTLS-built Exim from starting at all."""
    skip_unless_ready(missing())
    with pytest.raises(RuntimeError) as refused, Exim(certs, {"openssl_options": "+no_tlsv1"}):
        pass
    assert "openssl_options is set but we're using GnuTLS" in str(refused.value), refused.value
