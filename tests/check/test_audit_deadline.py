"""`check --audit` against probes that never finish: the report comes at the audit's
deadline and the process exits right after it (overrun probes run in daemon threads,
their connections are shut down); an open-relay probe that did not finish is reported
`skipped`, never taken for relaying accepted."""

from __future__ import annotations

import json
import os

from mailcli.check.audit import run_audit
from mailcli.check.findings import AuditTarget, Finding
from mailcli.check.smtp_raw import ProbeError
from mailcli.endpoint import ConnectionOptions, resolve_endpoint
from tests.helpers import run_process
from tests.servers import slow
from tests.servers.ports import HOST
from tests.servers.scripted import Conn, ScriptedServer

PROBE_EHLO = "mailcli-audit.invalid"  # the name every audit probe greets with
TIMEOUT = "0.2"  # the audit's deadline is 3 s + 40 probe timeouts: 11 s
SAFETY = 60  # far beyond the deadline: reaching it is the failure


def probes_hang(conn: Conn) -> None:
    """A plain ESMTP server for check's own session; every probe's EHLO or HELO is
    answered one byte at a time, for ever: each probe overruns the audit's deadline."""
    conn.send("220 scripted ESMTP")
    while line := conn.recv_line():
        verb, _, name = line.partition(" ")
        if verb.upper() in ("EHLO", "HELO") and name.startswith(PROBE_EHLO):
            return slow.misbehave(conn, "dribble", b"250-")
        if verb.upper() == "EHLO":
            conn.send("250-scripted", "250 PIPELINING")
        elif verb.upper() == "QUIT":
            conn.send("221 bye")
            return None
        else:
            conn.send("250 ok")
    return None


def test_the_audit_exits_after_its_report_when_probes_hang() -> None:
    with ScriptedServer(probes_hang) as server:
        connection = ["--host", HOST, "--port", str(server.port), "--security", "none"]
        done = run_process(
            ["check", "smtp", "--audit", "--json", *connection, "--timeout", TIMEOUT],
            env=dict(os.environ),
            timeout=SAFETY,
        )
    assert "Traceback" not in done.stderr.decode()
    report = json.loads(done.stdout)
    findings = {finding["id"]: finding for finding in report["findings"]}
    assert findings["open-relay"]["level"] == "skipped", findings["open-relay"]
    assert "did not finish" in findings["open-relay"]["summary"]
    trusted = findings["trusted-network"]["summary"]  # loopback: the note stays
    assert "relaying was accepted" not in trusted, trusted
    assert done.returncode == report["exit_status"] == 0, done.stderr


def test_a_skipped_open_relay_probe_is_not_relaying_accepted() -> None:
    """The trusted-network note once read any open-relay finding but `ok` as "relaying
    was accepted without AUTH", a `skipped` one too."""

    def probe_open_relay(target: AuditTarget) -> list[Finding]:
        raise ProbeError("no SMTP reply within the time bound")

    findings = {f.id: f for f in run_audit(audit_target(), probes=[probe_open_relay])}
    assert findings["open-relay"].level == "skipped"
    assert "relaying was accepted" not in findings["trusted-network"].summary


def audit_target() -> AuditTarget:
    endpoint = resolve_endpoint(
        "smtp", None, ConnectionOptions(host=HOST, port=25, security="none"), {}
    )
    return AuditTarget("smtp", endpoint, None, None, 0.2)
