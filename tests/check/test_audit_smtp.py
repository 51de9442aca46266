"""`check smtp --audit`: each SMTP probe against a Postfix configured to fail it
and one configured to pass it, and scripted servers for what Postfix cannot show
(STARTTLS injection, a lenient end of DATA without the pipelining guard, a slow failed
login). Outcomes never depend on machine speed: see `mailcli/check/smuggling.py`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.findings import AuditTarget, Finding
from mailcli.check.relay_probe import Tally, grade_relay
from mailcli.check.smtp_probes import (
    probe_login_delay,
    probe_null_sender,
    probe_starttls_injection,
    probe_user_enumeration,
)
from mailcli.check.smuggling import probe_smuggling
from mailcli.check.software import fix_for
from mailcli.endpoint import SecurityMode
from mailcli.errors import ExitStatus
from tests.helpers import Mailcli, findings_by_id, make_endpoint
from tests.servers import NEEDS, require
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.ports import HOST
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, ScriptedServer

# Each the opposite of the other; transports stay `error:` (Postfix refuses to change them).
VULNERABLE = {
    "smtpd_forbid_bare_newline": "no",
    "mynetworks": "127.0.0.0/8",
    "disable_vrfy_command": "no",
    "smtpd_tls_auth_only": "no",
    "smtpd_forbid_unauth_pipelining": "no",
    "smtpd_tls_protocols": ">=TLSv1",
    # The error: transports make Postfix refuse relayed recipients at RCPT even when the
    # relay restrictions allow them; without the unlisted check, an allowed relay shows.
    "smtpd_reject_unlisted_recipient": "no",
    "smtpd_sender_restrictions": "check_sender_access inline:{<>=REJECT}",
}
HARDENED = {
    "smtpd_forbid_bare_newline": "normalize",
    "mynetworks": "127.0.0.1/32",  # the tester comes from 127.0.0.2: outside
    "disable_vrfy_command": "yes",
    "smtpd_tls_auth_only": "yes",
    "smtpd_forbid_unauth_pipelining": "yes",
    "smtpd_tls_protocols": ">=TLSv1.2",
    "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
    "smtpd_tls_exclude_ciphers": "aNULL, kRSA, SHA1",
    "virtual_alias_maps": "inline:{postmaster@example.test=alice@example.test}",
}
OUTSIDE = "127.0.0.2"
SHORT_WAIT = 0.3  # only where no variant's outcome depends on it (see each use)
QUEUE_DIRS = ("maildrop", "incoming", "active", "deferred", "hold")


def target(
    port: int,
    *,
    rcpt: str | None = None,
    source: str | None = None,
    security: SecurityMode = "starttls",
    cafile: Path | None = None,
) -> AuditTarget:
    endpoint = make_endpoint("smtp", port, security=security, host=HOST, cafile=cafile)
    return AuditTarget("smtp", endpoint, rcpt, source, 5.0)


def delivered(postfix: Postfix, mailbox: Mailbox) -> list[bytes]:
    """Every message for `mailbox`, once Postfix's queue is empty: all it accepted."""
    deadline = time.monotonic() + 20
    queue = postfix.root / "queue"
    while any(f.is_file() for d in QUEUE_DIRS for f in (queue / d).rglob("*")):
        assert time.monotonic() < deadline, "Postfix's queue did not empty"
        time.sleep(0.05)
    return [path.read_bytes() for path in postfix.messages(mailbox.user)]


def queued_by_smuggling(finding: Finding) -> int:
    """What the probe's variant lines say the server queued: (a) and (b) together."""
    total = 0
    for line in finding.evidence:
        if match := re.match(r"== .*: alone (accepted|not end-of-data); .*: (\d+) queued", line):
            total += int(match[2]) + (match[1] == "accepted")
    return total


# --- Postfix, both ways -------------------------------------------------------------


@pytest.fixture(scope="module")
def vulnerable(dovecot: Dovecot) -> Iterator[Postfix]:
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(dovecot, settings=VULNERABLE) as server:
        yield server


@pytest.fixture(scope="module")
def hardened(dovecot: Dovecot) -> Iterator[Postfix]:
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(dovecot, settings=HARDENED) as server:
        yield server


@pytest.fixture(scope="module")
def vulnerable_box(dovecot: Dovecot) -> Mailbox:
    return make_mailbox(dovecot, "audit")


@pytest.fixture(scope="module")
def hardened_box(dovecot: Dovecot) -> Mailbox:
    return make_mailbox(dovecot, "audit")


@pytest.fixture(scope="module")
def vulnerable_audit(vulnerable: Postfix, vulnerable_box: Mailbox, certs: Certs) -> list[Finding]:
    return run_audit(target(vulnerable.smtp_port, rcpt=vulnerable_box.address, cafile=certs.ca_pem))


@pytest.fixture(scope="module")
def hardened_audit(hardened: Postfix, hardened_box: Mailbox, certs: Certs) -> list[Finding]:
    audit = target(
        hardened.smtp_port, rcpt=hardened_box.address, source=OUTSIDE, cafile=certs.ca_pem
    )
    return run_audit(audit)


@pytest.mark.parametrize(
    ("probe", "level"),
    [
        ("smuggling", "fail"),
        ("starttls-injection", "ok"),
        ("open-relay", "warn"),  # relays, but for mynetworks, and we are on its host
        ("auth-before-tls", "fail"),
        ("unauth-pipelining", "warn"),
        ("null-sender", "fail"),
        ("size-limit", "ok"),
        ("login-delay", "warn"),
    ],
)
def test_vulnerable_postfix(vulnerable_audit: list[Finding], probe: str, level: str) -> None:
    finding = findings_by_id(vulnerable_audit)[probe]
    assert finding.level == level, finding
    assert finding.evidence, finding
    if level in ("warn", "fail"):
        assert finding.fix, finding
    if level == "fail":
        assert finding.status != ExitStatus.OK


@pytest.mark.parametrize(
    ("probe", "level"),
    [
        ("smuggling", "ok"),
        ("starttls-injection", "ok"),
        ("open-relay", "ok"),
        ("user-enumeration", "info"),  # RCPT still tells: inherent
        ("auth-before-tls", "ok"),
        ("unauth-pipelining", "ok"),
        ("null-sender", "ok"),
        ("size-limit", "ok"),
    ],
)
def test_hardened_postfix(hardened_audit: list[Finding], probe: str, level: str) -> None:
    finding = findings_by_id(hardened_audit)[probe]
    assert finding.level == level, finding
    assert finding.evidence, finding


def test_vulnerable_evidence_proves_it(vulnerable_audit: list[Finding]) -> None:
    found = findings_by_id(vulnerable_audit)
    smuggling = "\n".join(found["smuggling"].evidence)
    assert "\\n.\\n: alone accepted; with a second message: 2 queued" in smuggling
    assert "\\r.\\r\\n: alone not end-of-data; with a second message: 1 queued" in smuggling
    assert "trusted networks" in found["open-relay"].summary
    assert any(line.startswith("S: 250") for line in found["open-relay"].evidence)
    assert "C: NOOP" in found["unauth-pipelining"].evidence
    assert any("Sender address rejected" in line for line in found["null-sender"].evidence)
    inside = found["trusted-network"]
    assert inside.level == "info" and "relaying was accepted without AUTH" in inside.summary


def test_open_relay_from_outside_the_trusted_networks_is_a_fail() -> None:
    """The same refusal-free RCPTs, seen from an address that is not the server's own."""
    finding = grade_relay(Tally(["relaytest@example.invalid"], [], ["S: 250 2.1.5 Ok"]), None)
    assert finding.level == "fail" and finding.status == ExitStatus.PROTOCOL
    assert "smtpd_relay_restrictions" in (fix_for("open-relay", "postfix") or "")


def test_smuggling_from_inside_mynetworks_is_a_warn_on_the_hardened_server(
    hardened: Postfix, dovecot: Dovecot, certs: Certs
) -> None:
    """Postfix exempts mynetworks (127.0.0.1/32) from smtpd_forbid_bare_newline: from
    there the variant ends DATA, and only smtpd_forbid_unauth_pipelining refuses the
    smuggled command. The (a) answers come at once, so the default wait is kept."""
    box = make_mailbox(dovecot, "audit")
    audit = target(hardened.smtp_port, rcpt=box.address, cafile=certs.ca_pem)
    found = findings_by_id(run_audit(audit, [probe_smuggling]))
    assert found["smuggling"].level == "warn"
    assert any("SMTP protocol synchronization" in line for line in found["smuggling"].evidence)
    assert "loopback" in found["trusted-network"].summary


def test_only_the_smuggling_messages_reach_the_audit_mailbox(
    vulnerable: Postfix,
    hardened: Postfix,
    vulnerable_box: Mailbox,
    hardened_box: Mailbox,
    vulnerable_audit: list[Finding],
    hardened_audit: list[Finding],
) -> None:
    for server, box, findings in (
        (vulnerable, vulnerable_box, vulnerable_audit),
        (hardened, hardened_box, hardened_audit),
    ):
        messages = delivered(server, box)
        assert len(messages) == queued_by_smuggling(findings_by_id(findings)["smuggling"]) > 0
        for message in messages:
            assert b"Subject: mailcli audit: smuggling probe" in message
            assert f"From: <{box.address}>".encode() in message


def test_user_enumeration_through_vrfy_warns(
    postfix: Postfix, mailbox: Mailbox, certs: Certs
) -> None:
    """The default test Postfix: VRFY on, unknown users refused (252 against 550)."""
    audit = target(postfix.smtp_port, rcpt=mailbox.address, cafile=certs.ca_pem)
    finding = probe_user_enumeration(audit)[0]
    assert finding.level == "warn" and "VRFY" in finding.summary
    assert any(line.startswith("S: 252") for line in finding.evidence)
    assert "disable_vrfy_command = yes" in (fix_for("user-enumeration", "postfix") or "")


def test_probes_that_need_a_recipient_are_skipped_without_one(
    vulnerable: Postfix, certs: Certs
) -> None:
    audit = target(vulnerable.smtp_port, cafile=certs.ca_pem)
    found = findings_by_id(
        run_audit(audit, [probe_smuggling, probe_user_enumeration, probe_null_sender])
    )
    for probe in ("smuggling", "user-enumeration", "null-sender"):
        assert found[probe].level == "skipped"
        assert "--audit-rcpt" in found[probe].summary


def test_a_probe_that_crashes_is_skipped_not_raised(vulnerable: Postfix) -> None:
    def probe_broken(_: AuditTarget) -> list[Finding]:
        raise RuntimeError("boom")

    found = run_audit(target(vulnerable.smtp_port), [probe_broken])
    assert found[0] == Finding("broken", "skipped", "could not test: boom", incomplete=True)
    incomplete = findings_by_id(found)["audit-incomplete"]
    assert incomplete.level == "warn" and "broken (could not test: boom)" in incomplete.summary


@pytest.fixture
def hardened_account(hardened: Postfix) -> Account:
    return Account(HOST, hardened.smtp_port, security="starttls", cafile=hardened.certs.ca_pem)


@pytest.mark.mailcli(account="hardened_account")
def test_cli_audit_json(mailcli: Mailcli, hardened: Postfix, dovecot: Dovecot) -> None:
    box = make_mailbox(dovecot, "audit")
    args = ("--audit", "--audit-rcpt", box.address, "--source-address", OUTSIDE, "--json")
    result = mailcli("check", "smtp", *args)
    report = json.loads(result.stdout)
    levels = {f["id"]: f["level"] for f in report["findings"]}
    assert all(set(f) == {"id", "level", "summary", "evidence", "fix"} for f in report["findings"])
    assert {"connect", "tls", "certificate-verify", "auth-offered"} <= set(levels)
    assert levels["smuggling"] == levels["open-relay"] == levels["null-sender"] == "ok"
    fails = [f["id"] for f in report["findings"] if f["level"] == "fail"]
    assert (result.code == 0) == (fails == []), (result.code, fails)
    assert report["exit_status"] == result.code


def test_cli_refuses_audit_options_without_audit(hardened_account: Account) -> None:
    check = Mailcli(hardened_account)
    assert check("check", "smtp", "--audit-rcpt", "a@example.test").code == 64
    assert check("check", "smtp", "--audit", "--source-address", "not-an-ip").code == 64


# --- scripted servers: what Postfix cannot show ---------------------------------------


def smtp_server(
    on_command: Callable[[Conn, str], bool], features: str = "PIPELINING"
) -> ScriptedServer:
    """A scripted ESMTP server: greeting, EHLO with `features`, then `on_command` for
    every other line until it returns False."""

    def script(conn: Conn) -> None:
        conn.send("220 scripted ESMTP")
        while line := conn.recv_line():
            if line.upper().startswith(("EHLO", "HELO")):
                *others, last = features.split(",")
                conn.send("250-scripted", *(f"250-{f}" for f in others), f"250 {last}")
            elif not on_command(conn, line):
                return

    return ScriptedServer(script)


def lenient_terminator(conn: Conn, line: str) -> bool:
    """Bare LF ends a line, even inside DATA (Postfix 3.7's `no`), and pipelined commands
    after the end of DATA are taken (no smtpd_forbid_unauth_pipelining)."""
    verb = line.split(" ")[0].upper()
    if verb == "QUIT":
        conn.send("221 bye")
        return False
    if verb != "DATA":
        conn.send("250 ok")
        return True
    conn.send("354 go ahead")
    previous = b"\n"
    while (raw := conn.file.readline(65536)) and not (
        previous.endswith(b"\n") and raw in (b".\n", b".\r\n")
    ):
        conn.received.append(raw.decode("utf-8", "replace"))
        previous = raw
    if raw:
        conn.send("250 2.0.0 queued")
    return bool(raw)


def test_smuggling_fails_on_a_lenient_server_without_the_pipelining_guard() -> None:
    """Graded by (b), whose replies always come: the short (a) wait only shortens the
    variants the server does not take, whatever (a) says (b) decides the fail."""
    with smtp_server(lenient_terminator) as server:
        audit = target(server.port, rcpt="me@scripted.test", security="none")
        finding = probe_smuggling(audit, wait=SHORT_WAIT)[0]
    assert finding.level == "fail", finding
    assert "\\n.\\n" in finding.summary and "\\r.\\r\\n" not in finding.summary
    assert sum("Subject: mailcli audit: smuggling probe" in r for r in server.received) > 0


def injectable_starttls(certs: Certs) -> Callable[[Conn, str], bool]:
    """Answers, inside TLS, a command that arrived in clear with STARTTLS (the bug)."""

    def on_command(conn: Conn, line: str) -> bool:
        if line.upper() == "STARTTLS":
            injected = conn.recv_line()  # sent with STARTTLS: here before the ClientHello
            conn.send("220 ready")
            conn.sock = certs.server_context().wrap_socket(conn.sock, server_side=True)
            conn.file = conn.sock.makefile("rb")
            if injected:
                conn.send("250 2.0.0 ok (the injected command)")
            return True
        if line.upper() == "QUIT":
            conn.send("221 bye")
            return False
        conn.send("250 ok")
        return True

    return on_command


def test_starttls_injection_fails_on_a_server_that_keeps_cleartext_input(certs: Certs) -> None:
    with smtp_server(injectable_starttls(certs), "PIPELINING,STARTTLS") as server:
        finding = probe_starttls_injection(target(server.port))[0]
    assert finding.level == "fail", finding
    assert any("injected command" in line for line in finding.evidence)
    assert "C: STARTTLS" in finding.evidence and "C: NOOP" in finding.evidence


def slow_failed_login(conn: Conn, line: str) -> bool:
    if line.upper().startswith("AUTH"):
        time.sleep(1.05)  # a lower bound: the answer is never earlier, however fast we are
        conn.send("535 5.7.8 authentication failed")
        return True
    if line.upper() == "QUIT":
        conn.send("221 bye")
        return False
    conn.send("250 ok")
    return True


def test_login_delay_is_ok_when_failures_are_slowed_down() -> None:
    with smtp_server(slow_failed_login, "AUTH PLAIN") as server:
        finding = probe_login_delay(target(server.port, security="none"))[0]
    assert finding.level == "ok", finding
    assert sum(line.startswith("C: AUTH PLAIN") for line in finding.evidence) == 3
