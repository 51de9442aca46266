"""What `check` and `check --audit` report: graded findings with evidence and a fix.

A finding names a stable `id` (the audit's probe ids: `smuggling`, `tls-versions`, ...),
a `level`, one-line `summary`, the `evidence` (the exact lines sent and received that
prove it, secrets masked) and a `fix` for the software that answered (mailcli.check.software
fills it in from its catalogue, by `id` and `cause`). `status` is the exit status a `fail`
stands for (check exits with the first one's). A `skipped` finding with `incomplete` set
is a probe that should have run but could not (the server refused or never greeted, an
error, the deadline): the audit's summary names it.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from mailcli.check.limiter import SHARED_LIMITER, ConnectionLimiter
from mailcli.endpoint import Endpoint, MailProtocol
from mailcli.errors import ExitStatus

Level = Literal["ok", "info", "warn", "fail", "skipped"]


class Finding(NamedTuple):
    id: str
    level: Level
    summary: str
    evidence: tuple[str, ...] = ()
    fix: str | None = None
    status: ExitStatus = ExitStatus.OK  # for a `fail`: the exit status it stands for
    cause: str = ""  # which of the finding's causes was seen: picks the catalogue's fix
    incomplete: bool = False  # skipped although it applies: the audit is incomplete

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "level": self.level,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "fix": self.fix,
        }


class AuditTarget(NamedTuple):
    """The server under audit and what the tester brings.

    `endpoint` carries host, port, security mode, cafile/insecure, timeout and the user;
    `audit_rcpt` is an address at the server that the tester owns (probes that need an
    accepted recipient use it, and only it; None: they are `skipped`); `source_address`
    is the local address to connect from (None: the system's choice); `limiter` bounds
    the connections open at once to the server, for the whole audit.
    """

    protocol: MailProtocol
    endpoint: Endpoint
    audit_rcpt: str | None = None
    source_address: str | None = None
    probe_timeout: float = 5.0  # every single read of a probe is bounded by this
    limiter: ConnectionLimiter = SHARED_LIMITER
    audit_from: str | None = None  # a sender the server accepts (open-relay's forms)


def skipped(probe_id: str, reason: str) -> Finding:
    """Not applicable here (e.g. needs --audit-rcpt): the audit stays complete."""
    return Finding(probe_id, "skipped", reason)


def could_not_run(probe_id: str, reason: str, evidence: tuple[str, ...] = ()) -> Finding:
    """Applies, but could not be run: the audit is incomplete, and says why."""
    return Finding(probe_id, "skipped", reason, evidence, incomplete=True)
