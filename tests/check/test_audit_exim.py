"""`check smtp --audit` against a real Exim 4.96 (Debian's GnuTLS build, tests/servers/exim.py)
with Debian's defaults, and with the fixes the audit gives applied (the OpenSSL build:
test_audit_exim_openssl).

At Debian's defaults (smtp_accept_max 20, smtp_max_synprot_errors 3, domain literals
refused, PIPECONNECT advertised) the audit gives the same findings three times over,
runs every probe, and each warn/fail is confirmed without mailcli: openssl s_client for
TLS, a raw socket for pipelining, Exim's own log for relaying. The hardened server runs
exactly the fix texts the audit gave (Exim's entries in the fix catalogue) and those
findings turn `ok`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import Finding
from mailcli.check.limiter import ConnectionLimiter
from tests.helpers import assert_one_verdict, audit_target, finding_levels, findings_by_id
from tests.servers import skip_unless_ready
from tests.servers.certs import Certs
from tests.servers.exim import HARDENED, HARDENED_OPENSSL, Exim, missing
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


@pytest.fixture(scope="module")
def default_audits(exim: Exim, certs: Certs) -> list[list[Finding]]:
    return [audit(exim, certs) for _ in range(3)]


def test_three_audits_give_the_same_findings(default_audits: list[list[Finding]]) -> None:
    assert_one_verdict(default_audits, DEFAULT_LEVELS, "Exim")


def test_every_probe_ran_within_exims_limits(
    default_audits: list[list[Finding]], exim: Exim
) -> None:
    """After the three audits (each complete), Exim's log shows nothing refused for its
    connection or error limits."""
    log = exim.mainlog()
    assert "too many connections" not in log
    assert "too many syntax or protocol errors" not in log


def test_open_relay_is_graded_on_the_forms_exim_let_through(
    default_audits: list[list[Finding]], exim: Exim
) -> None:
    relay = findings_by_id(default_audits[0])["open-relay"]
    assert "15 of 16 forms tested" in relay.summary, relay.summary
    assert "domain literals not allowed" in "\n".join(relay.evidence)
    # Exim's own account: each run's 15 relay RCPTs refused (ACL, syntax or unqualified).
    refusals = [line for line in exim.mainlog().splitlines() if "relaytest" in line]
    assert len(refusals) == 3 * 15, refusals
    assert all(("rejected" in line or "syntax error" in line) for line in refusals)


def test_tls_findings_are_true(exim: Exim) -> None:
    for version in ("-tls1", "-tls1_1"):
        assert exim.handshakes(version, "DEFAULT:@SECLEVEL=0"), version
    assert exim.handshakes("-tls1_2", "ECDHE-ECDSA-AES256-SHA")  # CBC with SHA-1


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
    finding = findings_by_id(default_audits[0])["unauth-pipelining"]
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
    # Debian's build is GnuTLS: its form comes first, labelled (the OpenSSL form follows).
    gnutls_form = fixes["tls-versions"].partition("; OpenSSL build: ")[0]
    assert gnutls_form.startswith("Exim: GnuTLS build (Debian's): "), gnutls_form
    assert "openssl_options" not in gnutls_form


def test_the_fixes_turn_the_findings_ok(hardened_exim: Exim, certs: Certs) -> None:
    runs = [finding_levels(audit(hardened_exim, certs), DEFAULT_LEVELS) for _ in range(3)]
    assert runs[0] == {**DEFAULT_LEVELS, **FIXED}, runs[0]
    assert runs[1] == runs[0] and runs[2] == runs[0], runs
    assert not hardened_exim.handshakes("-tls1", "DEFAULT:@SECLEVEL=0")
    assert not hardened_exim.handshakes("-tls1_2", "ECDHE-ECDSA-AES256-SHA")


@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        ("openssl_options", "openssl_options is set but we're using GnuTLS"),
        ("tls_require_ciphers", "tls_require_ciphers invalid: gnutls_priority_init"),
    ],
)
def test_the_openssl_forms_make_debians_exim_refuse_its_config(
    certs: Certs, setting: str, refusal: str
) -> None:
    """Why Exim's entries label each build's form: the OpenSSL build's fixes stop Debian's
    GnuTLS-built Exim from starting at all."""
    skip_unless_ready(missing())
    openssl_form = {setting: HARDENED_OPENSSL[setting]}
    with pytest.raises(RuntimeError) as refused, Exim(certs, openssl_form):
        pass
    assert refusal in str(refused.value), refused.value
