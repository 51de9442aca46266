"""`check --audit`: run the probes for the protocol and collect their findings.

Probes run concurrently (each opens its own connections), each bounded in time: a probe
that has not finished by its deadline is `skipped` ("did not finish"), and one that
raises is `skipped` with the reason, never a crash of the audit. At the deadline the
connections still open are shut down and the probes run in daemon threads, so an
overrun probe never keeps the process alive after the report. After the probes, the
audit judges where the tester stands: on the server's host, over loopback, or with
relaying accepted without AUTH, the tester may be inside the server's trusted networks
(Postfix's mynetworks), where a fixed server still looks vulnerable to smuggling and
relays by design; the report says so (`trusted-network`). Only a relay finding
(`warn` or `fail`) counts as relaying accepted: a `skipped` open-relay probe proved
nothing, and neither did a form accepted that addresses the server itself.

All connections of one audit share `target.limiter` (at most --audit-connections open at
once; see limiter.py and raw.py for the back-off). Before the probes one connection
identifies the server software (software.py); every finding's fix comes from its
catalogue for that software. A probe that applies but could not run (the server stayed
at its limit, an error, the deadline) is `skipped` with the reason and what each attempt
saw, and an `audit-incomplete` finding names every such probe: an incomplete audit never
reads as a clean one.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from mailcli.check.background import Background
from mailcli.check.findings import AuditTarget, Finding, could_not_run
from mailcli.check.pop3_probes import POP3_PROBES
from mailcli.check.raw import RawConnection, ServerUnavailable, shut_down_all
from mailcli.check.smtp_probes import SMTP_PROBE_LIST
from mailcli.check.smuggling import SMUGGLING_WAIT, probe_smuggling
from mailcli.check.software import NAMES, fix_for, identify
from mailcli.check.tls_probes import TLS_PROBES, unverified_context
from mailcli.endpoint import MailProtocol
from mailcli.errors import ExitStatus, MailcliError
from mailcli.transport.connect import server_addresses

Probe = Callable[[AuditTarget], list[Finding]]
SMTP_PROBES: list[Probe] = [probe_smuggling, *SMTP_PROBE_LIST]
# A probe makes a bounded number of bounded reads; this bounds the probe as a whole.
PROBE_READS = 40  # the most reads any probe waits for in turn (open-relay: ~36)


def probes_for(protocol: MailProtocol) -> list[Probe]:
    return [*(SMTP_PROBES if protocol == "smtp" else POP3_PROBES), *TLS_PROBES]


def probe_id(probe: Probe) -> str:
    """`probe_open_relay` -> `open-relay`: the ids are the probes' names."""
    return probe.__name__.removeprefix("probe_").replace("_", "-")


def run_audit(target: AuditTarget, probes: list[Probe] | None = None) -> list[Finding]:
    """Every probe's findings, in the order of the probe list, then `software`,
    `audit-incomplete` (when a probe could not run) and `trusted-network`."""
    chosen = probes if probes is not None else probes_for(target.protocol)
    deadline = SMUGGLING_WAIT + target.probe_timeout * PROBE_READS
    ends = time.monotonic() + deadline
    identifying = Background(partial(_identify, target), name="audit-software")
    runs = [Background(partial(probe, target), name=f"audit-{probe_id(probe)}") for probe in chosen]
    for run in runs:
        run.wait(max(0.0, ends - time.monotonic()))
    identifying.wait(max(0.0, ends - time.monotonic()))
    identity = (
        identifying.result()
        if identifying.done and identifying.error is None
        else _unidentified(f"did not finish within {deadline:g} s")
    )
    findings = [
        finding
        for probe, run in zip(chosen, runs, strict=True)
        for finding in _outcome(probe, run, deadline)
    ]
    shut_down_all()  # the overrun probes' connections: their threads end on EOF
    graded = [_with_fix(f, identity.software) for f in _with_fail_status(findings)]
    return [
        *graded,
        identity.finding,
        *_incomplete(graded),
        *_trusted_network(target, findings, identity.software),
    ]


def _outcome(probe: Probe, run: Background[list[Finding]], deadline: float) -> list[Finding]:
    name = probe_id(probe)
    if not run.done:
        return [could_not_run(name, f"did not finish within {deadline:g} s")]
    error = run.error
    if error is None:
        return run.result()
    reason = getattr(error, "message", None) or str(error) or type(error).__name__
    evidence = error.evidence if isinstance(error, ServerUnavailable) else ()
    return [could_not_run(name, f"could not test: {reason}", evidence)]


def _with_fix(finding: Finding, software: str) -> Finding:
    """A warn or fail (or an info with a cause, or with a probe's own advice) gets the
    catalogue's fix for the software that answered."""
    advises = finding.fix is not None or finding.cause
    if finding.level in ("ok", "skipped") or (finding.level == "info" and not advises):
        return finding
    key = f"{finding.id}:{finding.cause}" if finding.cause else finding.id
    fix = fix_for(key, software)
    return finding if fix is None else finding._replace(fix=fix)


def _incomplete(findings: list[Finding]) -> list[Finding]:
    missing = [f for f in findings if f.incomplete]
    if not missing:
        return []
    summary = "the audit is incomplete: " + "; ".join(f"{f.id} ({f.summary})" for f in missing)
    return [Finding("audit-incomplete", "warn", summary)]


class Identity(NamedTuple):
    software: str
    finding: Finding


def _identify(target: AuditTarget) -> Identity:
    """The software that answers, from one connection: greeting, then EHLO or CAPA."""
    try:
        with RawConnection.open(target, context=unverified_context()) as conn:
            greeting, capabilities = _greeting_and_capabilities(conn, target.protocol)
    except (OSError, ServerUnavailable) as exc:
        return _unidentified(f"no connection: {exc}")
    software = identify(target.protocol, greeting, capabilities)
    summary = f"server software: {NAMES[software]} (from its greeting and capabilities)"
    return Identity(software, Finding("software", "info", summary, tuple(conn.evidence)))


def _unidentified(reason: str) -> Identity:
    summary = f"server software not identified ({reason}): general advice only"
    return Identity("unknown", Finding("software", "info", summary))


def _greeting_and_capabilities(
    conn: RawConnection, protocol: MailProtocol
) -> tuple[bytes, dict[str, str]]:
    if protocol == "smtp":
        greeting = conn.read_smtp_reply()
        conn.send(b"EHLO mailcli-audit.invalid\r\n")
        ehlo = conn.read_smtp_reply()
        lines = ehlo[1][1:] if ehlo is not None else []
        words = [line[4:].decode("ascii", "replace").partition(" ") for line in lines]
        conn.send(b"QUIT\r\n")
        return b" ".join(greeting[1] if greeting else []), {k.lower(): v for k, _, v in words}
    first = conn.read_line() or b""
    conn.send(b"CAPA\r\n")
    capabilities: dict[str, str] = {}
    if (conn.read_line() or b"").startswith(b"+OK"):
        while (line := conn.read_line()) not in (None, b"."):
            keyword, _, argument = line.decode("ascii", "replace").partition(" ")
            capabilities[keyword.lower()] = argument
    conn.send(b"QUIT\r\n")
    return first, capabilities


def _with_fail_status(findings: list[Finding]) -> list[Finding]:
    """A `fail` makes `check` exit non-zero: one without its own status stands for 76."""
    return [
        f._replace(status=ExitStatus.PROTOCOL)
        if f.level == "fail" and f.status == ExitStatus.OK
        else f
        for f in findings
    ]


def _trusted_network(target: AuditTarget, findings: list[Finding], software: str) -> list[Finding]:
    reasons = []
    local = _local_vantage(target)
    if local:
        reasons.append(local)
    relay = next(
        (
            f
            for f in findings
            if f.id == "open-relay" and f.level in ("warn", "fail") and f.cause != "local-form"
        ),
        None,
    )
    if relay is not None and target.endpoint.user is None:
        reasons.append("relaying was accepted without AUTH")
    if not reasons:
        return []
    summary = (
        f"the tester may be inside the server's trusted networks ({'; '.join(reasons)}): "
        f"{_inside_effect(target.protocol, software)}; to know, run again from another host, or "
        "with --source-address from an address outside them"
    )
    return [Finding("trusted-network", "info", summary)]


def _inside_effect(protocol: MailProtocol, software: str) -> str:
    """What looks different from inside the trusted networks. Of the POP3 servers only
    Dovecot is known to treat its own address as secure; for the others the note says
    only that access rules may differ."""
    if protocol == "smtp":
        return (
            "smuggling and open-relay can look worse than from outside (Postfix exempts "
            "mynetworks from smtpd_forbid_bare_newline and relays for it)"
        )
    if software == "dovecot":
        return (
            "auth-before-tls can look better than from outside (Dovecot treats a client "
            "on its own address as secure and allows cleartext logins there)"
        )
    return "access rules (firewalls, per-address limits) may differ from outside"


def _local_vantage(target: AuditTarget) -> str | None:
    """Whether the server is reached over loopback or at the source address: the
    first address a connection tries, IPv4 or IPv6 (::1 is loopback too)."""
    host = target.endpoint.host
    try:
        address = ipaddress.ip_address(server_addresses(target.endpoint)[0])
    except (MailcliError, ValueError):
        return None
    if address.is_loopback:
        return f"{host} is a loopback address"
    source = target.source_address
    if source is not None and ipaddress.ip_address(source) == address:
        return f"{host} is this host"
    return None
