"""`check pop3 --audit`'s POP3 probes against the test Dovecot (configured to fail some),
a hardened Dovecot (configured to pass them), and tests/servers/tlsserver.py for what
Dovecot cannot show (a server that answers a CAPA injected after STLS, a version in the
banner). Plaintext findings come from 127.0.0.2: Dovecot treats a client on its own
address (127.0.0.1) as secure."""

from __future__ import annotations

from pathlib import Path

from mailcli.check.findings import AuditTarget
from mailcli.check.pop3_probes import (
    POP3_PROBES,
    probe_apop,
    probe_auth_before_tls,
    probe_banner,
    probe_login_delay,
    probe_stls_injection,
)
from mailcli.endpoint import SecurityMode
from tests.helpers import audit_target, only
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import HARDENED_DOVECOT
from tests.servers.stack import DEFAULT_USERS
from tests.servers.tlsserver import TlsServer, issue, server_context

OUTSIDER = "127.0.0.2"  # another loopback address: not "the server's own address"


def target(
    port: int,
    security: SecurityMode = "starttls",
    *,
    source: str | None = OUTSIDER,
    cafile: Path | None = None,
) -> AuditTarget:
    return audit_target("pop3", port, security, cafile=cafile, source=source)


def test_test_dovecot_fails_what_it_is_configured_to_fail(dovecot: Dovecot) -> None:
    audit = target(dovecot.pop3_port)
    auth = only(probe_auth_before_tls(audit), "auth-before-tls")
    assert auth.level == "fail", auth
    assert "USER" in auth.summary and "disable_plaintext_auth = yes" in (auth.fix or "")
    assert "C: CAPA" in auth.evidence and "S: USER" in auth.evidence
    apop = only(probe_apop(audit), "apop")
    assert apop.level == "warn" and "auth_mechanisms" in (apop.fix or "")
    assert any(line.startswith("S: +OK") and "@" in line for line in apop.evidence)
    delay = only(probe_login_delay(audit), "login-delay")
    assert delay.level == "warn", delay  # the test Dovecot sets auth_failure_delay = 0
    assert "auth_failure_delay" in (delay.fix or "")


def test_dovecot_passes_the_rest(dovecot: Dovecot) -> None:
    audit = target(dovecot.pop3_port)
    banner = only(probe_banner(audit), "banner")
    assert banner.level == "ok", banner  # "Dovecot (Debian) ready." names no version
    injection = only(probe_stls_injection(audit), "stls-injection")
    assert injection.level == "ok", injection
    assert "C: STLS" in injection.evidence  # STLS and CAPA went in one write, both recorded
    assert "C: CAPA" in injection.evidence


def test_hardened_dovecot_passes(hardened_dovecot: Dovecot) -> None:
    audit = target(hardened_dovecot.pop3_port)
    assert only(probe_auth_before_tls(audit), "auth-before-tls").level == "ok"
    assert only(probe_apop(audit), "apop").level == "ok"
    delay = only(probe_login_delay(audit), "login-delay")  # 3 x Dovecot's 2 s delay
    assert delay.level == "ok", delay
    assert sum(line.startswith("C: PASS") for line in delay.evidence) == 3  # never more


def test_the_same_address_as_the_server_is_said_to_prove_nothing(
    hardened_dovecot: Dovecot,
) -> None:
    """From 127.0.0.1 the hardened Dovecot offers USER in clear (it trusts its own
    address): not a `fail`, and the summary says why."""
    auth = only(
        probe_auth_before_tls(target(hardened_dovecot.pop3_port, source=None)), "auth-before-tls"
    )
    assert auth.level == "info", auth
    assert "--source-address" in auth.summary


def test_login_delay_masks_its_password(dovecot: Dovecot) -> None:
    delay = only(probe_login_delay(target(dovecot.pop3s_port, "tls")), "login-delay")
    passes = [line for line in delay.evidence if line.startswith("C: PASS")]
    assert passes == ["C: PASS ********"] * 3
    users = {line for line in delay.evidence if line.startswith("C: USER audit-")}
    assert len(users) == 1  # one random, non-existent user for the three attempts


def test_implicit_tls_has_nothing_in_clear(dovecot: Dovecot) -> None:
    audit = target(dovecot.pop3s_port, "tls")
    assert only(probe_stls_injection(audit), "stls-injection").level == "skipped"
    assert only(probe_auth_before_tls(audit), "auth-before-tls").level == "skipped"
    assert only(probe_banner(audit), "banner").level == "ok"


def test_a_server_answering_the_injected_capa_fails(tmp_path: Path) -> None:
    cert = issue(tmp_path, "inject")
    with TlsServer(server_context(cert), keep_pipelined=True) as server:
        finding = only(probe_stls_injection(target(server.port, source=None)), "stls-injection")
    assert finding.level == "fail", finding
    after = finding.evidence[finding.evidence.index("== TLS handshake done: TLSv1.3") + 1 :]
    assert after and after[0] == "S: +OK"  # the CAPA's answer, unasked, inside TLS


def test_the_same_server_without_the_bug_passes(tmp_path: Path) -> None:
    cert = issue(tmp_path, "noinject")
    with TlsServer(server_context(cert), keep_pipelined=False) as server:
        finding = only(probe_stls_injection(target(server.port, source=None)), "stls-injection")
    assert finding.level == "ok", finding


def test_a_version_in_the_banner_warns(tmp_path: Path) -> None:
    cert = issue(tmp_path, "banner")
    greeting = b"+OK mail.example.test POP3 server (ExamplePOP 4.2.1) ready <1.2@x.test>"
    with TlsServer(server_context(cert), greeting=greeting) as server:
        audit = target(server.port, source=None)
        banner = only(probe_banner(audit), "banner")
        apop = only(probe_apop(audit), "apop")
    assert banner.level == "warn" and "4.2.1" in banner.summary, banner
    assert "login_greeting" in (banner.fix or "")
    assert apop.level == "warn"


def test_every_probe_is_bounded_and_returns_one_finding(certs: Certs, dovecot: Dovecot) -> None:
    audit = target(dovecot.pop3_port, cafile=certs.ca_pem)
    ids = [finding.id for probe in POP3_PROBES for finding in probe(audit)]
    assert ids == ["stls-injection", "auth-before-tls", "apop", "banner", "login-delay"]


def test_a_closed_port_is_skipped_not_raised() -> None:
    from tests.servers.ports import free_port

    for probe in POP3_PROBES:
        (finding,) = probe(target(free_port(), source=None))
        assert finding.level == "skipped" and "could not test" in finding.summary


def test_the_trusted_network_note_names_what_pop3_sees_differently(dovecot: Dovecot) -> None:
    from mailcli.check.audit import run_audit

    findings = run_audit(target(dovecot.pop3_port, source=None))
    (note,) = [f for f in findings if f.id == "trusted-network"]
    assert note.level == "info" and "loopback" in note.summary
    assert "auth-before-tls" in note.summary and "smuggling" not in note.summary


def test_cleartext_user_from_the_servers_own_address_fails_unless_it_is_dovecot(
    tmp_path: Path,
) -> None:
    """Only Dovecot is known to trust a client on its own address: any other server
    offering USER in clear to 127.0.0.1 offers it to everybody, so it fails as seen."""
    cert = issue(tmp_path, "courierlike")
    with TlsServer(server_context(cert), greeting=b"+OK Hello there.") as server:
        auth = only(probe_auth_before_tls(target(server.port, source=None)), "auth-before-tls")
    assert auth.level == "fail", auth
    assert "own address" not in auth.summary
    assert "Dovecot" not in (auth.fix or ""), auth  # the server is not Dovecot


def test_dovecot_with_another_greeting_is_known_by_its_behaviour(certs: Certs) -> None:
    """The loopback exception follows Dovecot, not its default greeting: a hardened
    Dovecot whose greeting names nothing is still known (by its answer to QUIT)."""
    settings = f"{HARDENED_DOVECOT}login_greeting = Mail ready.\n"
    with Dovecot(certs, DEFAULT_USERS, extra_settings=settings, failure_delay=True) as server:
        auth = only(probe_auth_before_tls(target(server.pop3_port, source=None)), "auth-before-tls")
        assert any(
            line == "S: +OK Mail ready." or line.startswith("S: +OK Mail ready. <")
            for line in auth.evidence
        ), auth.evidence
    assert auth.level == "info", auth
    assert "Dovecot" in auth.summary and "--source-address" in auth.summary


DOVECOT_FINDINGS = {
    "stls-injection": "ok",
    "auth-before-tls": "fail",
    "apop": "warn",
    "banner": "ok",
    "login-delay": "warn",
    "tls-versions": "ok",
    "weak-ciphers": "warn",
    "certificate": "ok",
    "software": "info",
    "trusted-network": "info",
}


def test_three_audits_of_dovecot_agree_and_give_dovecots_fixes(
    dovecot: Dovecot, certs: Certs
) -> None:
    from mailcli.check.audit import run_audit
    from mailcli.check.limiter import ConnectionLimiter

    for _ in range(3):
        audit = target(dovecot.pop3_port, cafile=certs.ca_pem)._replace(limiter=ConnectionLimiter())
        findings = run_audit(audit)
        assert {f.id: f.level for f in findings} == DOVECOT_FINDINGS, findings
        assert audit.limiter.most_held <= 2
        for finding in findings:
            if finding.level in ("fail", "warn"):
                assert (finding.fix or "").startswith("Dovecot: "), finding
                assert "no fix verified" not in (finding.fix or ""), finding


def test_the_trusted_network_note_claims_dovecots_exception_only_for_dovecot(
    tmp_path: Path,
) -> None:
    """Over loopback the note still says the tester may be inside; what looks different
    there is Dovecot's own-address exception only when Dovecot answered."""
    from mailcli.check.audit import run_audit

    cert = issue(tmp_path, "courierlike")
    with TlsServer(server_context(cert), greeting=b"+OK Hello there.") as server:
        findings = run_audit(target(server.port, source=None), probes=[])
    (note,) = [f for f in findings if f.id == "trusted-network"]
    assert "loopback" in note.summary and "Dovecot" not in note.summary, note
