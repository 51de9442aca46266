"""`mailcli check smtp|pop3`: what a server offers, and what is wrong with it.

A report: connect time, banner, TLS (version, cipher, certificate subject, issuer,
names, expiry, verification), capabilities and AUTH mechanisms before and after TLS,
optionally a login test (and STAT for POP3), and findings (`findings.Finding`: a stable id, level,
summary, evidence, fix) graded ok / warn / fail; with `--audit` the active probes'
findings follow (`audit.run_audit`). The exit status is 0 without a `fail`, else the
status of the first failure.

The ids of check's own findings: `connect`, `ehlo-name` (SMTP: the name EHLO gives,
and why that one), `session` (a failure after connecting),
`stopped` (--quit-after), `tls`, `starttls` (not offered), `certificate-verify`,
`certificate-expiry`, `auth-in-clear`, `auth-offered`, `login`, `stat`,
`client-certificate` (info: whether the server asks for one, `check.client_ca`).

When the certificate does not verify, that is a failure (77) and no credential is ever
sent; a second, unverified connection then collects the certificate's details and the
capabilities after TLS, so the report says *why* (wrong name, expired, unknown CA).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailcli.auth.credential import Credential
from mailcli.check.client_ca import ClientCertificateRequest, probe_client_certificate_request
from mailcli.check.findings import AuditTarget, Finding, Level
from mailcli.config import SecurityMode
from mailcli.endpoint import Endpoint, MailProtocol
from mailcli.errors import (
    ExitStatus,
    MailcliError,
    PermissionDeniedError,
    StoppedEarly,
    TempFailError,
    UnavailableError,
)
from mailcli.pop3.phases import Pop3Phase
from mailcli.smtp.phases import SmtpPhase
from mailcli.tlsinfo import TlsInfo, describe
from mailcli.transcript import Transcript

if TYPE_CHECKING:
    from mailcli.smtp.session import SmtpSession

EXPIRY_WARNING_DAYS = 14


@dataclass
class CheckReport:
    protocol: MailProtocol
    host: str
    port: int
    security: SecurityMode
    connect_ms: float | None = None
    banner: str | None = None
    tls: TlsInfo | None = None
    capabilities_before_tls: dict[str, str] | None = None
    capabilities_after_tls: dict[str, str] | None = None
    auth_before_tls: list[str] | None = None
    auth_after_tls: list[str] | None = None
    max_message_size: int | None = None  # SMTP SIZE (RFC 1870), parsed
    login: bool | None = None
    stat: dict[str, int] | None = None
    ehlo_name: str | None = None  # SMTP: what EHLO gave (smtp.ehloname, as send decides)
    # Whether the server's handshake asked for a client certificate, and which CAs
    # (check.client_ca: openssl s_client), when TLS was reached.
    client_certificate: ClientCertificateRequest | None = None
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        finding_id: str,
        level: Level,
        summary: str,
        status: ExitStatus = ExitStatus.OK,
        fix: str | None = None,
    ) -> None:
        self.findings.append(Finding(finding_id, level, summary, fix=fix, status=status))

    @property
    def exit_status(self) -> ExitStatus:
        return next((f.status for f in self.findings if f.level == "fail"), ExitStatus.OK)

    def as_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["findings"] = [finding.as_json() for finding in self.findings]
        document["exit_status"] = self.exit_status
        return document


def run_check(
    protocol: MailProtocol,
    endpoint: Endpoint,
    *,
    login: bool,
    credential: Credential,
    transcript: Transcript,
    quit_after: Pop3Phase | None = None,
    audit: AuditTarget | None = None,
) -> CheckReport:
    """Probe; on an untrusted certificate, probe again unverified for the details; then
    the audit's probes when `audit` names a target."""
    report = _check(protocol, endpoint, login, credential, transcript, quit_after)
    if report.tls is not None:
        request = probe_client_certificate_request(endpoint)
        report.client_certificate = request
        report.add("client-certificate", "info", f"client certificate: {request.summary()}")
    if audit is not None:
        from mailcli.check.audit import run_audit

        report.findings.extend(run_audit(audit))
    return report


def _check(
    protocol: MailProtocol,
    endpoint: Endpoint,
    login: bool,
    credential: Credential,
    transcript: Transcript,
    quit_after: Pop3Phase | None,
) -> CheckReport:
    report = CheckReport(protocol, endpoint.host, endpoint.port, endpoint.security)
    try:
        if protocol == "smtp":
            _probe_smtp(report, endpoint, login, credential, transcript)
        else:
            _probe_pop3(report, endpoint, login, credential, transcript, quit_after)
    except StoppedEarly as stop:
        report.add("stopped", "ok", stop.message)
    except PermissionDeniedError as exc:
        if report.login is not None:  # the login failed, not the certificate
            raise
        report.add("certificate-verify", "fail", exc.message, exc.exit_status)
        details = CheckReport(protocol, endpoint.host, endpoint.port, endpoint.security)
        transcript.info("certificate not trusted: reconnecting unverified, for details only")
        insecure = endpoint._replace(insecure=True)
        probe = _probe_smtp if protocol == "smtp" else _probe_pop3
        try:
            probe(details, insecure, False, credential, transcript)
        except MailcliError:
            return report
        _merge_details(report, details, verify_error=exc.message)
    except MailcliError as exc:
        where = "connect" if report.connect_ms is None else "session"
        report.add(where, "fail", exc.message, exc.exit_status)
    return report


def _merge_details(report: CheckReport, details: CheckReport, *, verify_error: str) -> None:
    for name in (
        "connect_ms",
        "banner",
        "capabilities_before_tls",
        "capabilities_after_tls",
        "auth_before_tls",
        "auth_after_tls",
    ):
        setattr(report, name, getattr(details, name))
    if details.tls is not None:
        report.tls = dataclasses.replace(details.tls, verified=False, verify_error=verify_error)
        _judge_certificate(report, report.tls, trusted=False)


def _probe_smtp(
    report: CheckReport,
    endpoint: Endpoint,
    login: bool,
    credential: Credential,
    transcript: Transcript,
) -> None:
    from mailcli.smtp.session import SmtpSession

    def reached(phase: SmtpPhase, session: SmtpSession) -> None:
        if phase == "connect":
            report.connect_ms = round(session.connect_seconds * 1000, 1)
            report.banner = str(session.greeting)
            _connected(report, endpoint)
            _ehlo_named(report, session)
        elif phase == "ehlo" and endpoint.security != "tls":
            report.capabilities_before_tls = session.features
            report.auth_before_tls = session.features.get("auth", "").split()
        elif phase == "tls" and endpoint.security != "none":
            _after_tls(report, session.connection, session.features, endpoint)
        if phase in ("ehlo", "tls"):
            size = session.features.get("size", "")
            report.max_message_size = int(size) if size.isascii() and size.isdigit() else None

    session = SmtpSession(
        endpoint, credential=credential, transcript=transcript, login=False, on_phase=reached
    )
    try:
        with session:
            _judge_auth(report, endpoint)
            if login:
                _login(report, endpoint, session.login)
    except UnavailableError:
        if not _starttls_missing(report, endpoint):
            raise
        # The session stopped (QUIT) before any credential: report why, and what it saw.
        report.add(
            "starttls",
            "fail",
            "no STARTTLS offered: mail and passwords would travel in clear",
            ExitStatus.UNAVAILABLE,
            "Postfix: smtpd_tls_security_level = may (or encrypt) with a certificate",
        )
        _judge_auth(report, endpoint)


def _connected(report: CheckReport, endpoint: Endpoint) -> None:
    report.add("connect", "ok", f"connected to {endpoint.where} in {report.connect_ms} ms")


def _ehlo_named(report: CheckReport, session: SmtpSession) -> None:
    if session.ehlo_name is not None:
        report.ehlo_name, reason = session.ehlo_name
        report.add("ehlo-name", "ok", f"EHLO name {report.ehlo_name} ({reason})")


def _starttls_missing(report: CheckReport, endpoint: Endpoint) -> bool:
    before = report.capabilities_before_tls
    return endpoint.security == "starttls" and before is not None and "starttls" not in before


def _probe_pop3(
    report: CheckReport,
    endpoint: Endpoint,
    login: bool,
    credential: Credential,
    transcript: Transcript,
    quit_after: Pop3Phase | None = None,
) -> None:
    from mailcli.pop3.commands import stat
    from mailcli.pop3.session import Pop3Session

    def reached(phase: Pop3Phase, pop: Pop3Session) -> None:
        if phase == "connect":
            report.connect_ms = round(pop.connect_seconds * 1000, 1)
            report.banner = pop.welcome.decode("utf-8", "replace")
            _connected(report, endpoint)
        elif phase == "capa" and endpoint.security != "tls":
            report.capabilities_before_tls = _joined(pop.capabilities)
            report.auth_before_tls = _pop3_auth(report.capabilities_before_tls)
        elif phase == "tls" and endpoint.security != "none":
            if endpoint.security == "tls":
                report.capabilities_before_tls = None
            _after_tls(report, pop.sock, _joined(pop.capabilities), endpoint)

    session = Pop3Session(
        endpoint,
        credential=credential,
        transcript=transcript,
        login=False,
        quit_after=quit_after,
        on_phase=reached,
    )
    with session as pop:
        _judge_auth(report, endpoint)
        if login:
            _login(report, endpoint, pop.login)
            if report.login:
                count, octets = stat(pop)
                report.stat = {"messages": count, "octets": octets}
                report.add("stat", "ok", f"STAT: {count} messages, {octets} octets")


def _joined(capabilities: dict[str, list[str]]) -> dict[str, str]:
    return {name: " ".join(arguments) for name, arguments in capabilities.items()}


def _pop3_auth(capabilities: dict[str, str]) -> list[str]:
    """USER (cleartext USER/PASS) and the SASL mechanisms."""
    mechanisms = capabilities.get("SASL", "").split()
    return (["USER"] if "USER" in capabilities else []) + mechanisms


def _after_tls(
    report: CheckReport, sock: Any, capabilities: dict[str, str], endpoint: Endpoint
) -> None:
    report.capabilities_after_tls = capabilities
    auth = (
        capabilities.get("auth", "").split()
        if report.protocol == "smtp"
        else (_pop3_auth(capabilities))
    )
    report.auth_after_tls = auth
    report.tls = describe(
        sock,
        verified=not endpoint.insecure,
        verify_error="--insecure" if endpoint.insecure else None,
    )
    report.add("tls", "ok", f"TLS: {report.tls.version} {report.tls.cipher}")
    _judge_certificate(report, report.tls, trusted=not endpoint.insecure)


def _judge_certificate(report: CheckReport, tls: TlsInfo, *, trusted: bool) -> None:
    days = tls.certificate.days_left
    if days is None:
        return
    if days < 0:
        report.add(
            "certificate-expiry",
            "fail",
            f"certificate expired {-days} days ago ({tls.certificate.not_after})",
            ExitStatus.NOPERM,
        )
    elif days < EXPIRY_WARNING_DAYS:
        report.add(
            "certificate-expiry",
            "warn",
            f"certificate expires in {days} days ({tls.certificate.not_after})",
        )
    elif trusted:
        report.add("certificate-verify", "ok", f"certificate verified, valid for {days} more days")


def _judge_auth(report: CheckReport, endpoint: Endpoint) -> None:
    before = report.auth_before_tls or []
    if before:  # offered on a connection that is not (yet) encrypted
        where = " (loopback: only local traffic is exposed)" if _loopback(endpoint.host) else ""
        report.add(
            "auth-in-clear",
            "warn",
            f"authentication ({' '.join(before)}) offered before TLS: "
            f"credentials could be sent in clear{where}",
        )
    after = report.auth_after_tls
    if after:
        report.add("auth-offered", "ok", f"authentication after TLS: {' '.join(after)}")


def _login(report: CheckReport, endpoint: Endpoint, action: Callable[[], object]) -> None:
    if not endpoint.user:
        report.add(
            "login", "fail", "--login needs a user (--user or the account's)", ExitStatus.CONFIG
        )
        return
    try:
        action()
    except (PermissionDeniedError, TempFailError) as exc:
        report.login = False
        report.add("login", "fail", exc.message, exc.exit_status)
        return
    report.login = True
    report.add("login", "ok", f"login as {endpoint.user} succeeded")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
