"""`mailcli check smtp|pop3`: a server's report card (see mailcli/check/report.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mailcli.cli.context import AppContext
from mailcli.cli.options import connection_options, quit_after_option
from mailcli.endpoint import ConnectionOptions

if TYPE_CHECKING:
    from mailcli.check.report import CheckReport


@click.command()
@click.argument("protocol", type=click.Choice(["smtp", "pop3"]))
@click.option("--login", is_flag=True, help="Also test authentication (and STAT for POP3).")
@quit_after_option(("connect", "capa", "tls", "auth"))
@connection_options
@click.pass_obj
def check(app: AppContext, /, connection: ConnectionOptions, protocol: str, login: bool) -> int:
    """Connect and report banner, TLS and certificate, capabilities and AUTH before and
    after TLS, optionally a login; findings graded ok/warn/fail (exit: the first fail's
    status, else 0). --quit-after applies to POP3."""
    from mailcli.check.report import run_check

    endpoint = app.endpoint(protocol, connection)
    report = run_check(
        protocol,
        endpoint,
        login=login,
        password=app.credential(endpoint),
        transcript=app.transcript(),
        quit_after=app.quit_after if protocol == "pop3" else None,
    )
    if app.json:
        app.out.json(report.as_json())
    else:
        app.out.fields(_summary(report), document=None)
        app.out.table(
            ["level", "finding"], [[f.level, f.message] for f in report.findings], document=None
        )
    return report.exit_status


def _summary(report: CheckReport) -> list[tuple[str, str]]:
    rows: list[tuple[str, str | None]] = [
        ("server", f"{report.protocol}://{report.host}:{report.port} ({report.security})"),
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
            ("certificate verified", "yes" if tls.verified else f"no: {tls.verify_error}"),
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
    if report.login is not None:
        rows.append(("login", "ok" if report.login else "failed"))
    if report.stat is not None:
        rows.append(("stat", f"{report.stat['messages']} messages, {report.stat['octets']} octets"))
    return [(name, value) for name, value in rows if value is not None]
