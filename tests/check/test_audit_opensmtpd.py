"""`check smtp --audit` against a real OpenSMTPD 6.8 (tests/servers/opensmtpd.py) with
Debian's smtpd.conf, on its cleartext listener, and with the fix the audit gives applied.

The audit once opened so many connections that OpenSMTPD delayed its greetings and the
smuggling probe was always skipped, hiding that 6.8 ends DATA at a bare LF. Now the
findings are the same three times over, nothing is skipped that applies, and each warn
is confirmed with a raw socket; the hardened server runs the catalogue's fix.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import Finding
from tests.helpers import assert_one_verdict, audit_target, finding_levels
from tests.servers import skip_unless_ready
from tests.servers.opensmtpd import HARDENED_WITHOUT, RELAY_RULE, OpenSmtpd, missing
from tests.servers.ports import HOST

DEFAULT_LEVELS = {
    "smuggling": "warn",  # ends DATA at a bare LF; the pipelined second message is refused
    "starttls-injection": "skipped",  # cleartext listener: not applicable
    "open-relay": "warn",  # relays for local clients; the tester is one (loopback)
    "user-enumeration": "info",
    "auth-before-tls": "ok",
    "unauth-pipelining": "ok",
    "null-sender": "ok",
    "size-limit": "warn",
    "login-delay": "skipped",
}
FIXED = {"open-relay": "ok"}
ANNOUNCED_SIZE = 36700160  # OpenSMTPD's default max-message-size (35 MiB)


@pytest.fixture(scope="module")
def opensmtpd() -> Iterator[OpenSmtpd]:
    skip_unless_ready(missing())
    with OpenSmtpd() as server:
        yield server


@pytest.fixture(scope="module")
def hardened_opensmtpd() -> Iterator[OpenSmtpd]:
    skip_unless_ready(missing())
    with OpenSmtpd(HARDENED_WITHOUT) as server:
        yield server


def audit(server: OpenSmtpd) -> list[Finding]:
    return run_audit(
        audit_target("smtp", server.smtp_port, "none", audit_rcpt=server.audit_address)
    )


@pytest.fixture(scope="module")
def default_audits(opensmtpd: OpenSmtpd) -> list[list[Finding]]:
    return [audit(opensmtpd) for _ in range(3)]


def test_three_audits_give_the_same_findings(default_audits: list[list[Finding]]) -> None:
    assert_one_verdict(default_audits, DEFAULT_LEVELS, "OpenSMTPD")


def _session(server: OpenSmtpd) -> tuple[socket.socket, Iterator[bytes]]:
    sock = socket.create_connection((HOST, server.smtp_port), timeout=10)
    lines = iter(sock.makefile("rb"))
    assert next(lines).startswith(b"220 ")
    return sock, lines


def _ask(sock: socket.socket, lines: Iterator[bytes], command: bytes) -> bytes:
    sock.sendall(command + b"\r\n")
    while (line := next(lines))[3:4] == b"-":
        pass
    return line


def test_a_bare_lf_dot_lf_ends_data(opensmtpd: OpenSmtpd) -> None:
    sock, lines = _session(opensmtpd)
    with sock:
        _ask(sock, lines, b"EHLO raw.invalid")
        _ask(sock, lines, f"MAIL FROM:<{opensmtpd.audit_address}>".encode())
        _ask(sock, lines, f"RCPT TO:<{opensmtpd.audit_address}>".encode())
        assert _ask(sock, lines, b"DATA").startswith(b"354")
        sock.sendall(b"Subject: bare LF end (raw socket)\r\n\r\nbody\n.\n")
        assert next(lines).startswith(b"250 "), "the bare LF.LF did not end DATA"


def test_an_oversized_size_is_accepted_and_local_clients_relay(opensmtpd: OpenSmtpd) -> None:
    sock, lines = _session(opensmtpd)
    with sock:
        assert f"SIZE {ANNOUNCED_SIZE}".encode() in b"".join(_ehlo(sock, lines))
        oversized = f"MAIL FROM:<{opensmtpd.audit_address}> SIZE={ANNOUNCED_SIZE + 1}"
        assert _ask(sock, lines, oversized.encode()).startswith(b"250 ")
        assert _ask(sock, lines, b"RCPT TO:<relaytest@example.invalid>").startswith(b"250 ")
        _ask(sock, lines, b"RSET")


def _ehlo(sock: socket.socket, lines: Iterator[bytes]) -> list[bytes]:
    sock.sendall(b"EHLO raw.invalid\r\n")
    answer = [next(lines)]
    while answer[-1][3:4] == b"-":
        answer.append(next(lines))
    return answer


def test_the_fix_given_turns_open_relay_ok(
    default_audits: list[list[Finding]], hardened_opensmtpd: OpenSmtpd
) -> None:
    relay = next(f for f in default_audits[0] if f.id == "open-relay")
    assert (relay.fix or "").startswith("OpenSMTPD: ") and RELAY_RULE in (relay.fix or "")
    runs = [finding_levels(audit(hardened_opensmtpd), DEFAULT_LEVELS) for _ in range(3)]
    assert runs[0] == {**DEFAULT_LEVELS, **FIXED}, runs[0]
    assert runs[1] == runs[0] and runs[2] == runs[0], runs
