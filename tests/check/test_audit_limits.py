"""`check --audit` keeps within a server's connection limits and never hides one.

At most --audit-connections (default 2) connections are open at once, for the whole
audit; a server that turns connections away (421, a hang-up or silence before the
greeting) is tried again after a back-off, and a probe that still could not run is
`skipped` with each attempt's evidence and named by `audit-incomplete`. The servers
refuse a fixed number of connections (never "by load"), so outcomes never depend on
timing."""

from __future__ import annotations

import pytest

from mailcli.check import limiter
from mailcli.check.audit import run_audit
from mailcli.check.findings import AuditTarget, Finding
from mailcli.check.relay_probe import probe_open_relay
from mailcli.check.smtp_probes import probe_size_limit
from tests.helpers import Mailcli, findings_by_id, make_endpoint
from tests.servers.accounts import Account
from tests.servers.limited import DOMAIN, LimitedSmtp
from tests.servers.ports import HOST

RCPT = f"audit@{DOMAIN}"
PROBE_TIMEOUT = 1.0  # the scripted server answers at once; silence is the fault


def target(port: int, **extra: object) -> AuditTarget:
    endpoint = make_endpoint("smtp", port, host=HOST)
    return AuditTarget("smtp", endpoint, RCPT, None, PROBE_TIMEOUT, **extra)  # type: ignore[arg-type]


def not_run(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "skipped" and "could not" in f.summary]


@pytest.mark.parametrize("fault", ["421", "close", "silent"])
def test_connections_turned_away_are_tried_again(fault: str) -> None:
    """The server's first three connections are refused: every probe still runs."""
    with LimitedSmtp(fault, refuse_first=3) as server:
        findings = run_audit(target(server.port))
    assert server.refused == 3
    assert not_run(findings) == [], not_run(findings)
    assert "audit-incomplete" not in findings_by_id(findings)


def test_the_whole_audit_keeps_within_the_connection_limit() -> None:
    with LimitedSmtp() as server:
        slots = limiter.ConnectionLimiter(2)
        findings = run_audit(target(server.port, limiter=slots))
    assert slots.most_held == 2, "the audit never ran two connections at once"
    assert server.accepted > 14  # the smuggling probe alone opens 14, now two at a time
    assert not_run(findings) == []


def test_one_connection_at_a_time() -> None:
    with LimitedSmtp() as server:
        slots = limiter.ConnectionLimiter(1)
        findings = run_audit(target(server.port, limiter=slots))
    assert slots.most_held == 1 and not_run(findings) == []


def test_a_server_that_stays_at_its_limit_makes_the_audit_incomplete() -> None:
    with LimitedSmtp("421", refuse_all=True) as server:
        findings = findings_by_id(
            run_audit(target(server.port), [probe_open_relay, probe_size_limit])
        )
    for probe in ("open-relay", "size-limit"):
        finding = findings[probe]
        assert finding.level == "skipped" and finding.incomplete, finding
        assert "no usable connection after 5 attempts" in finding.summary
        assert any("421 4.3.2 too many connections" in line for line in finding.evidence)
    incomplete = findings["audit-incomplete"]
    assert incomplete.level == "warn"
    assert "open-relay (" in incomplete.summary and "size-limit (" in incomplete.summary
    assert "open relay" not in findings["trusted-network"].summary


def test_cli_audit_connections_is_bounded() -> None:
    check = Mailcli(Account(HOST, 25, security="none"))
    assert check("check", "smtp", "--audit", "--audit-connections", "0").code == 64
    assert check("check", "smtp", "--audit-connections", "2").code == 64  # needs --audit


def test_a_local_catch_all_is_not_an_open_relay() -> None:
    """`relaytest%example.invalid@server` and `example.invalid!relaytest@server` are the
    server's own addresses: a catch-all accepts them and delivers them locally."""
    with LimitedSmtp(catch_all=True) as server:
        findings = findings_by_id(run_audit(target(server.port), [probe_open_relay]))
    relay = findings["open-relay"]
    assert relay.level == "warn" and relay.cause == "local-form", relay
    assert "<relaytest%example.invalid@limited.test>" in relay.summary
    assert "<relaytest@example.invalid>" not in relay.summary
    assert "no proof of relaying" in relay.summary
    assert relay.fix and relay.fix.startswith("unknown server: general advice")
    assert "relaying was accepted" not in findings["trusted-network"].summary


def test_open_relay_sends_from_audit_from() -> None:
    with LimitedSmtp() as server:
        findings = findings_by_id(
            run_audit(target(server.port, audit_from="me@limited.test"), [probe_open_relay])
        )
    assert findings["open-relay"].cause == "local-form"  # only its own domain accepted
    senders = {line for line in server.server.received if line.startswith("MAIL FROM:")}
    assert senders == {
        "MAIL FROM:<>",
        "MAIL FROM:<antispam@[127.0.0.1]>",
        "MAIL FROM:<me@limited.test>",
    }


def test_cli_audit_from_needs_audit() -> None:
    check = Mailcli(Account(HOST, 25, security="none"))
    assert check("check", "smtp", "--audit-from", "me@example.org").code == 64
    assert check("check", "smtp", "--audit", "--audit-from", "not an address").code == 64
