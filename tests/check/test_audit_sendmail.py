"""`check smtp --audit` against a real Sendmail 8.17.1.9 (Debian bookworm's sendmail-bin,
OpenSSL, tests/servers/sendmail.py) with Debian's defaults and STARTTLS turned on the
Debian way, and with the fixes the audit gives applied.

At Debian's defaults the audit gives the same findings three times over and runs every
probe; each warn is confirmed without mailcli: a raw socket for VRFY/EXPN, the EHLO
before STARTTLS and relaying, `openssl s_client` for the suites, Sendmail's log for the
relay and the TLS handshakes. The hardened server runs exactly the sendmail.mc lines the
audit's fixes give (Sendmail's entries in the fix catalogue) and those findings turn `ok`
(user-enumeration `info`: RCPT still tells users apart, inherent to SMTP).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import Finding
from tests.helpers import assert_one_verdict, audit_target, finding_levels
from tests.servers import skip_unless_ready
from tests.servers.certs import Certs
from tests.servers.ports import HOST
from tests.servers.sclient import starttls_handshakes
from tests.servers.sendmail import HARDENED, LOOPBACK_RELAY, Sendmail, missing

# What the audit finds at Debian's defaults (the software, trusted-network and the
# certificate's notes aside); the hardened server differs only where its fixes apply.
DEFAULT_LEVELS = {
    "smuggling": "ok",  # Debian's +deb12u1 carries 8.18.1's CRLF-only end of DATA
    "starttls-injection": "ok",
    "open-relay": "warn",  # relays for its own host; the tester is on 127.0.0.1
    "user-enumeration": "warn",
    "auth-before-tls": "warn",  # DIGEST-MD5 and CRAM-MD5 in clear: no password, but offline
    "unauth-pipelining": "ok",
    "null-sender": "ok",
    "size-limit": "info",  # no MaxMessageSize: SIZE without a number
    "login-delay": "skipped",  # no PLAIN offered
    "tls-versions": "ok",  # OpenSSL 3's security level refuses TLS 1.0/1.1 handshakes
    "weak-ciphers": "warn",
}
FIXED = {"user-enumeration": "info", "auth-before-tls": "ok", "weak-ciphers": "ok"}
# PLAIN after STARTTLS makes login-delay applicable: this Sendmail has no SASL password
# store, so every login fails at once, and Sendmail itself adds no delay.
HARDENED_LEVELS = {**DEFAULT_LEVELS, **FIXED, "login-delay": "warn"}
RELAY_TARGET = "relaytest@example.invalid"


@pytest.fixture(scope="module")
def sendmail(certs: Certs) -> Iterator[Sendmail]:
    skip_unless_ready(missing())
    with Sendmail(certs) as server:
        yield server


@pytest.fixture(scope="module")
def hardened_sendmail(certs: Certs) -> Iterator[Sendmail]:
    skip_unless_ready(missing())
    with Sendmail(certs, HARDENED) as server:
        yield server


def audit(server: Sendmail, certs: Certs) -> list[Finding]:
    target = audit_target(
        "smtp", server.smtp_port, "starttls", cafile=certs.ca_pem, audit_rcpt=server.audit_address
    )
    return run_audit(target)


@pytest.fixture(scope="module")
def default_audits(sendmail: Sendmail, certs: Certs) -> list[list[Finding]]:
    return [audit(sendmail, certs) for _ in range(3)]


def test_three_audits_give_the_same_findings(default_audits: list[list[Finding]]) -> None:
    assert_one_verdict(default_audits, DEFAULT_LEVELS, "Sendmail")


def test_every_probe_ran_within_sendmails_limits(
    default_audits: list[list[Finding]], sendmail: Sendmail
) -> None:
    """Debian's limits: ConnectionRateThrottle 15 (later connections wait, none is
    refused) and no ClientConn/ClientRate limit for 127.*: after the three audits (each
    complete), its log shows nothing refused."""
    log = sendmail.maillog()
    assert "rejecting connections" not in log and "exceeded" not in log


def test_bare_line_ends_are_refused_as_the_audit_says(
    default_audits: list[list[Finding]], sendmail: Sendmail
) -> None:
    """The smuggling ok, in Sendmail's own words (the checks Debian took from 8.18.1)."""
    sendmail.wait_for_log("Bare linefeed (LF) not allowed")
    sendmail.wait_for_log("Bare carriage return (CR) not allowed")


def _session(server: Sendmail) -> tuple[socket.socket, Iterator[bytes]]:
    sock = socket.create_connection((HOST, server.smtp_port), timeout=10)
    lines = iter(sock.makefile("rb"))
    assert next(lines).startswith(b"220 ")
    return sock, lines


def _ask(sock: socket.socket, lines: Iterator[bytes], command: bytes) -> list[bytes]:
    sock.sendall(command + b"\r\n")
    answer = [next(lines)]
    while answer[-1][3:4] == b"-":
        answer.append(next(lines))
    return answer


def test_vrfy_and_expn_tell_users_apart(sendmail: Sendmail) -> None:
    sock, lines = _session(sendmail)
    with sock:
        _ask(sock, lines, b"EHLO raw.invalid")
        for verb in (b"VRFY", b"EXPN"):
            known = _ask(sock, lines, verb + f" <{sendmail.audit_address}>".encode())
            unknown = _ask(sock, lines, verb + b" <nobody-here-at-all@sendmail.test>")
            assert known[0].startswith(b"250 ") and unknown[0].startswith(b"550 "), (known, unknown)


def test_auth_before_tls_offers_only_challenge_response(
    default_audits: list[list[Finding]], sendmail: Sendmail
) -> None:
    """Debian's Sendmail offers the SASL library's DIGEST-MD5 and CRAM-MD5 before
    STARTTLS: no password travels in clear, so a warn, not a fail saying it does."""
    sock, lines = _session(sendmail)
    with sock:
        ehlo = _ask(sock, lines, b"EHLO raw.invalid")
    assert b"250-AUTH DIGEST-MD5 CRAM-MD5\r\n" in ehlo, ehlo
    finding = {f.id: f for f in default_audits[0]}["auth-before-tls"]
    assert finding.level == "warn" and "passwords can travel in clear" not in finding.summary
    assert "challenge-response" in finding.summary, finding.summary


def test_loopback_clients_relay(sendmail: Sendmail) -> None:
    assert LOOPBACK_RELAY[0] in (sendmail.root / "mail" / "access").read_text().splitlines()
    assert _relays(sendmail)
    assert not sendmail.queued()  # nothing was relayed: the probes never send DATA there


def test_sendmail_relays_for_its_own_host_without_debians_access_lines(certs: Certs) -> None:
    """Why the catalogue gives Sendmail no open-relay fix: the client 127.0.0.1 is this
    host (mail.sendmail.test, class w), which Sendmail trusts to relay whatever the
    access file says; from loopback the warn stands, as the trusted-network note says."""
    skip_unless_ready(missing())
    with Sendmail(certs, access_without=LOOPBACK_RELAY) as server:
        entries = (server.root / "mail" / "access").read_text().splitlines()
        assert not [e for e in entries if "RELAY" in e and not e.startswith("#")], entries
        assert _relays(server)


def _relays(server: Sendmail) -> bool:
    """Whether an RCPT toward a foreign domain is accepted without AUTH."""
    sock, lines = _session(server)
    with sock:
        _ask(sock, lines, b"EHLO raw.invalid")
        assert _ask(sock, lines, b"MAIL FROM:<>")[0].startswith(b"250 ")
        accepted = _ask(sock, lines, f"RCPT TO:<{RELAY_TARGET}>".encode())
        _ask(sock, lines, b"RSET")
    return accepted[0].startswith(b"250 ")


def test_tls_findings_are_true(sendmail: Sendmail) -> None:
    cbc_sha1 = "ECDHE-ECDSA-AES256-SHA"
    assert starttls_handshakes(sendmail.smtp_port, "-tls1_2", cbc_sha1)
    for version in ("-tls1", "-tls1_1"):  # the ok: refused, as the audit says
        assert not starttls_handshakes(sendmail.smtp_port, version, "DEFAULT:@SECLEVEL=0"), version
    sendmail.wait_for_log("cipher=ECDHE-ECDSA-AES256-SHA")


def test_the_fixes_given_are_the_hardened_servers_settings(
    default_audits: list[list[Finding]],
) -> None:
    fixes = {f.id: f.fix or "" for f in default_audits[0]}
    for line in HARDENED:
        assert any(line in fix for fix in fixes.values()), line
    for finding_id in FIXED:
        assert fixes[finding_id].startswith("Sendmail: "), fixes[finding_id]
    assert fixes["open-relay"].startswith("Sendmail: no fix verified"), fixes["open-relay"]


def test_the_fixes_turn_the_findings_ok(hardened_sendmail: Sendmail, certs: Certs) -> None:
    runs = [finding_levels(audit(hardened_sendmail, certs), DEFAULT_LEVELS) for _ in range(3)]
    assert runs[0] == HARDENED_LEVELS, runs[0]
    assert runs[1] == runs[0] and runs[2] == runs[0], runs
    assert not starttls_handshakes(hardened_sendmail.smtp_port, "-tls1_2", "ECDHE-ECDSA-AES256-SHA")
    sock, lines = _session(hardened_sendmail)
    with sock:
        ehlo = _ask(sock, lines, b"EHLO raw.invalid")
        assert not any(line[4:].startswith(b"AUTH") for line in ehlo), ehlo
        assert _ask(sock, lines, b"VRFY <nobody-here-at-all@sendmail.test>")[0].startswith(b"252")
