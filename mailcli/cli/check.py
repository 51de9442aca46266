"""`mailcli check smtp|pop3`: a server's report card (see mailcli/check/report.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mailcli.cli.context import AppContext
from mailcli.cli.options import connection_options, quit_after_option
from mailcli.endpoint import PROTOCOLS, ConnectionOptions, MailProtocol, host_port
from mailcli.pop3.phases import PHASES, pop3_phase

if TYPE_CHECKING:
    from mailcli.check.findings import AuditTarget
    from mailcli.check.report import CheckReport
    from mailcli.endpoint import Endpoint
    from mailcli.tlsinfo import TlsInfo

AUDIT_PROBE_TIMEOUT = 5.0  # seconds per read of a probe (never more than --timeout)
MAX_AUDIT_CONNECTIONS = 32  # more only overruns servers' per-client limits


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    local, at, domain = value.rpartition("@")
    if not (local and at and domain) or any(c in value for c in "<>\r\n\t "):
        raise click.BadParameter(f"{value!r} is not an address like user@example.org")
    return value


@click.command()
@click.argument("protocol", type=click.Choice(PROTOCOLS))
@click.option("--login", is_flag=True, help="Also test authentication (and STAT for POP3).")
@click.option(
    "--audit", is_flag=True, help="Also run the active security probes (graded, with evidence)."
)
@click.option(
    "--audit-rcpt",
    metavar="ADDR",
    callback=_address,
    help="An address at this server that you own: the only recipient probes may use.",
)
@click.option(
    "--audit-from",
    metavar="ADDR",
    callback=_address,
    help="A sender this server accepts, for the open-relay probe (default: --audit-rcpt).",
)
@click.option(
    "--audit-connections",
    metavar="N",
    type=click.IntRange(min=1, max=MAX_AUDIT_CONNECTIONS),
    default=None,
    help="At most N connections open to the server at once during --audit (default 2).",
)
@quit_after_option(PHASES)
@connection_options
@click.pass_obj
def check(
    app: AppContext,
    /,
    connection: ConnectionOptions,
    protocol: MailProtocol,
    login: bool,
    audit: bool,
    audit_rcpt: str | None,
    audit_connections: int | None,
    audit_from: str | None,
) -> int:
    """Connect and report banner, TLS and certificate, capabilities and AUTH before and
    after TLS, optionally a login; with --audit, probe for known weaknesses (smuggling,
    STARTTLS injection, open relay, ...). Findings graded ok/info/warn/fail/skipped (exit:
    the first fail's status, else 0). --quit-after applies to POP3."""
    from mailcli.check.report import run_check

    if (audit_rcpt or audit_from or audit_connections) and not audit:
        raise click.UsageError("--audit-rcpt, --audit-from and --audit-connections need --audit")
    endpoint = app.endpoint(protocol, connection)
    report = run_check(
        protocol,
        endpoint,
        login=login,
        credential=app.credential(endpoint),
        transcript=app.transcript(),
        quit_after=pop3_phase(app.quit_after) if protocol == "pop3" else None,
        audit=_audit_target(
            endpoint, audit_rcpt, audit_from, endpoint.source_address, audit_connections
        )
        if audit
        else None,
    )
    route = _route(endpoint)
    if app.json:
        app.out.json({**report.as_json(), **{k.replace(" ", "_"): v for k, v in route}})
    else:
        app.out.fields(_summary(report) + route, document=None)
        rows = [[f.level, f.id, f.summary, f.fix] for f in report.findings]
        app.out.table(["level", "id", "summary", "fix"], rows, document=None)
        if app.out.mode.stdout_tty:  # piped: one line per finding (--json has the evidence)
            _evidence(app, report)
    return report.exit_status


def _route(endpoint: Endpoint) -> list[tuple[str, str]]:
    """How the connection went, when not straight from the default address: the proxy
    (its password never shown) and the source address."""
    route = []
    if endpoint.proxy:
        from mailcli.transport.socks import shown_proxy_url

        route.append(("proxy", shown_proxy_url(endpoint.proxy)))
    if endpoint.source_address:
        route.append(("source address", endpoint.source_address))
    return route


def _audit_target(
    endpoint: Endpoint,
    rcpt: str | None,
    sender: str | None,
    source: str | None,
    connections: int | None,
) -> AuditTarget:
    from mailcli.check.findings import AuditTarget
    from mailcli.check.limiter import DEFAULT_CONNECTIONS, ConnectionLimiter

    timeout = min(endpoint.timeout, AUDIT_PROBE_TIMEOUT)
    limiter = ConnectionLimiter(connections or DEFAULT_CONNECTIONS)
    return AuditTarget(
        endpoint.protocol, endpoint, rcpt, source, timeout, limiter, audit_from=sender
    )


def _evidence(app: AppContext, report: CheckReport) -> None:
    """Under the table, what proves each fail and warn."""
    for finding in report.findings:
        if finding.level in ("fail", "warn") and finding.evidence:
            lines = "\n".join(f"    {line}" for line in finding.evidence)
            app.out.text(f"\n{finding.level} {finding.id}: evidence\n{lines}")


def _verified(tls: TlsInfo) -> str:
    status = "yes" if tls.verified else f"no: {tls.verify_error}"
    return f"{status} (pinned fingerprint)" if tls.pinned else status


def _summary(report: CheckReport) -> list[tuple[str, str]]:
    rows: list[tuple[str, str | None]] = [
        (
            "server",
            f"{report.protocol}://{host_port(report.host, report.port)} ({report.security})",
        ),
        ("connect", f"{report.connect_ms} ms" if report.connect_ms is not None else None),
        ("banner", report.banner),
    ]
    tls = report.tls
    if tls is not None:
        cert = tls.certificate
        rows += [
            ("tls", f"{tls.version} {tls.cipher}"),
            ("certificate subject", cert.subject),
            ("certificate issuer", cert.issuer),
            ("certificate names", ", ".join(cert.sans)),
            ("certificate expires", f"{cert.not_after} ({cert.days_left} days)"),
            ("certificate verified", _verified(tls)),
            ("certificate fingerprint", cert.fingerprint or None),
        ]
    for label, capabilities in (
        ("before TLS", report.capabilities_before_tls),
        ("after TLS", report.capabilities_after_tls),
    ):
        if capabilities is not None:
            rows.append(
                (
                    f"capabilities {label}",
                    "; ".join(f"{k} {v}".strip() for k, v in capabilities.items()),
                )
            )
    for label, mechanisms in (
        ("before TLS", report.auth_before_tls),
        ("after TLS", report.auth_after_tls),
    ):
        if mechanisms is not None:
            rows.append((f"auth {label}", " ".join(mechanisms) or "(none)"))
    if report.client_certificate is not None:
        rows.append(("client certificate", report.client_certificate.summary()))
    if report.login is not None:
        rows.append(("login", "ok" if report.login else "failed"))
    if report.stat is not None:
        rows.append(("stat", f"{report.stat['messages']} messages, {report.stat['octets']} octets"))
    return [(name, value) for name, value in rows if value is not None]
