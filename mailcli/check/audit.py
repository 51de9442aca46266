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
nothing.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from functools import partial

from mailcli.check.background import Background
from mailcli.check.findings import AuditTarget, Finding, skipped
from mailcli.check.pop3_probes import POP3_PROBES
from mailcli.check.raw import shut_down_all
from mailcli.check.smtp_probes import SMTP_PROBE_LIST
from mailcli.check.smuggling import SMUGGLING_WAIT, probe_smuggling
from mailcli.check.tls_probes import TLS_PROBES
from mailcli.errors import ExitStatus

Probe = Callable[[AuditTarget], list[Finding]]
SMTP_PROBES: list[Probe] = [probe_smuggling, *SMTP_PROBE_LIST]
# A probe makes a bounded number of bounded reads; this bounds the probe as a whole.
PROBE_READS = 40  # the most reads any probe waits for in turn (open-relay: ~36)


def probes_for(protocol: str) -> list[Probe]:
    return [*(SMTP_PROBES if protocol == "smtp" else POP3_PROBES), *TLS_PROBES]


def probe_id(probe: Probe) -> str:
    """`probe_open_relay` -> `open-relay`: the ids are the probes' names."""
    return probe.__name__.removeprefix("probe_").replace("_", "-")


def run_audit(target: AuditTarget, probes: list[Probe] | None = None) -> list[Finding]:
    """Every probe's findings, in the order of the probe list, then `trusted-network`."""
    chosen = probes if probes is not None else probes_for(target.protocol)
    deadline = SMUGGLING_WAIT + target.probe_timeout * PROBE_READS
    ends = time.monotonic() + deadline
    runs = [Background(partial(probe, target), name=f"audit-{probe_id(probe)}") for probe in chosen]
    for run in runs:
        run.wait(max(0.0, ends - time.monotonic()))
    findings = [
        finding
        for probe, run in zip(chosen, runs, strict=True)
        for finding in _outcome(probe, run, deadline)
    ]
    shut_down_all()  # the overrun probes' connections: their threads end on EOF
    return [*_with_fail_status(findings), *_trusted_network(target, findings)]


def _outcome(probe: Probe, run: Background[list[Finding]], deadline: float) -> list[Finding]:
    name = probe_id(probe)
    if not run.done:
        return [skipped(name, f"did not finish within {deadline:g} s")]
    error = run.error
    if error is None:
        return run.result()
    reason = getattr(error, "message", None) or str(error) or type(error).__name__
    return [skipped(name, f"could not test: {reason}")]


def _with_fail_status(findings: list[Finding]) -> list[Finding]:
    """A `fail` makes `check` exit non-zero: one without its own status stands for 76."""
    return [
        f._replace(status=ExitStatus.PROTOCOL)
        if f.level == "fail" and f.status == ExitStatus.OK
        else f
        for f in findings
    ]


def _trusted_network(target: AuditTarget, findings: list[Finding]) -> list[Finding]:
    reasons = []
    local = _local_vantage(target)
    if local:
        reasons.append(local)
    relay = next(
        (f for f in findings if f.id == "open-relay" and f.level in ("warn", "fail")), None
    )
    if relay is not None and target.endpoint.user is None:
        reasons.append("relaying was accepted without AUTH")
    if not reasons:
        return []
    summary = (
        f"the tester may be inside the server's trusted networks ({'; '.join(reasons)}): "
        f"{_INSIDE_EFFECT[target.protocol]}; to know, run again from another host, or "
        "with --source-address from an address outside them"
    )
    return [Finding("trusted-network", "info", summary)]


# What looks different from inside the trusted networks, per protocol.
_INSIDE_EFFECT = {
    "smtp": "smuggling and open-relay can look worse than from outside (Postfix exempts "
    "mynetworks from smtpd_forbid_bare_newline and relays for it)",
    "pop3": "auth-before-tls can look better than from outside (Dovecot treats a client "
    "on its own address as secure and allows cleartext logins there)",
}


def _local_vantage(target: AuditTarget) -> str | None:
    host = target.endpoint.host
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return None
    if address.is_loopback:
        return f"{host} is a loopback address"
    source = target.source_address
    if source is not None and ipaddress.ip_address(source) == address:
        return f"{host} is this host"
    return None
