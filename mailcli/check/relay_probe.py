"""The `open-relay` probe: nmap's smtp-open-relay forms toward RELAY_DOMAIN, never DATA.

Servers that count errors drop the session after a few (Exim: smtp_max_synprot_errors,
3), and some refuse forms outright (Exim: domain literals, 501): so the forms run from
a sender the server accepts (--audit-from, else --audit-rcpt, else antispam@ the
server's domain), a fresh connection is opened before the server's error limit and
after a dropped one, and the grade says which forms were actually tested.

An RCPT accepted for a form that addresses the server itself (`user%relay@server`,
`relay!user@server`, a quoted local part) proves no relaying: a local catch-all accepts
it too and delivers it locally. Only an accepted form whose final domain is the foreign
RELAY_DOMAIN is a relay; accepted local-looking forms alone are a `warn`.
"""

from __future__ import annotations

from typing import NamedTuple

from mailcli.check.findings import AuditTarget, Finding, could_not_run
from mailcli.check.smtp_raw import ProbeError, SmtpDialog, domain_of, inside_reason
from mailcli.errors import ExitStatus

RELAY_DOMAIN = "example.invalid"  # RFC 2606: can never be a real destination
ERRORS_PER_CONNECTION = 2  # below Exim's smtp_max_synprot_errors (3): reconnect first
_SYNTAX_ERRORS = (500, 501, 503)


def relay_tests(server_ip: str, server_domain: str, sender: str) -> list[tuple[str, str]]:
    """nmap's smtp-open-relay set: (MAIL FROM, RCPT TO) toward RELAY_DOMAIN."""
    user, relay, ip, host = "relaytest", RELAY_DOMAIN, f"[{server_ip}]", server_domain
    tests = [(s, f"{user}@{relay}") for s in ("", f"antispam@{ip}", sender)]
    for rcpt in (
        f"{user}%{relay}@{ip}",
        f"{user}%{relay}@{host}",
        f'"{user}@{relay}"',
        f'"{user}%{relay}"',
        f"{user}@{relay}@{ip}",
        f'"{user}@{relay}"@{ip}',
        f"{user}@{relay}@{host}",
        f"@{ip}:{user}@{relay}",
        f"@{host}:{user}@{relay}",
        f"{relay}!{user}",
        f"{relay}!{user}@{ip}",
        f"{relay}!{user}@{host}",
        f"{user}@{relay}%{host}",
    ):
        tests.append((sender, rcpt))
    return tests


FORMS = len(relay_tests("", "", ""))


def is_foreign(rcpt: str) -> bool:
    """The form's final domain is RELAY_DOMAIN (not the server's own domain or address)."""
    final = rcpt.rpartition("@")[2] if "@" in rcpt.rpartition('"')[2] else ""
    return final.split("%")[0].lower() == RELAY_DOMAIN


class Tally(NamedTuple):
    accepted: list[str]
    untested: list[str]  # "<form>: why"
    evidence: list[str]


def probe_open_relay(target: AuditTarget) -> list[Finding]:
    """Each form once, RSET between; a new connection every ERRORS_PER_CONNECTION
    syntax errors and after a dropped one (that form is tried once more)."""
    domain = domain_of(target.audit_rcpt) if target.audit_rcpt else target.endpoint.host
    sender = target.audit_from or target.audit_rcpt or f"antispam@{domain}"
    tally = Tally([], [], [])
    smtp = SmtpDialog.open(target)
    ip = smtp.conn.sock.getpeername()[0]
    inside = inside_reason(smtp.conn)
    errors = 0
    try:
        for mail_from, rcpt in relay_tests(ip, domain, sender):
            if errors >= ERRORS_PER_CONNECTION:
                smtp, errors = _fresh(smtp, target, tally), 0
            for attempt in (1, 2):
                try:
                    errors += _try_form(smtp, mail_from, rcpt, tally)
                    break
                except (ProbeError, OSError):  # dropped: once more, on a new connection
                    tally.evidence.extend([*smtp.evidence, "== the server hung up"])
                    smtp.conn.close()
                    if attempt == 2:
                        tally.untested.append(f"<{rcpt}>: the server hung up, twice")
                    smtp, errors = SmtpDialog.open(target), 0
        smtp.quit()
    finally:
        smtp.conn.close()
    tally.evidence.extend(smtp.evidence)
    return [grade_relay(tally, inside)]


def _fresh(smtp: SmtpDialog, target: AuditTarget, tally: Tally) -> SmtpDialog:
    smtp.quit()
    tally.evidence.extend([*smtp.evidence, "== a new connection, before the server's error limit"])
    return SmtpDialog.open(target)


def _try_form(smtp: SmtpDialog, mail_from: str, rcpt: str, tally: Tally) -> int:
    """One form; returns how many syntax errors the server counted."""
    mail = smtp.command(f"MAIL FROM:<{mail_from}>")[0]
    if mail != 250:
        tally.untested.append(f"<{rcpt}> from <{mail_from}>: MAIL refused ({mail})")
        return 1 if mail in _SYNTAX_ERRORS else 0
    code = smtp.command(f"RCPT TO:<{rcpt}>")[0]
    if code // 100 == 2:
        tally.accepted.append(rcpt)
    smtp.command("RSET")
    return 1 if code in _SYNTAX_ERRORS else 0


def grade_relay(tally: Tally, inside: str | None) -> Finding:
    evidence = tuple(tally.evidence)
    tested = FORMS - len(tally.untested)
    if tested == 0:
        return could_not_run("open-relay", "no form could be tested: " + _untested(tally), evidence)
    foreign = [a for a in tally.accepted if is_foreign(a)]
    if not tally.accepted:
        summary = f"no relaying toward {RELAY_DOMAIN} ({tested} of {FORMS} forms tested"
        summary += f"; not tested: {_untested(tally)})" if tally.untested else ")"
        return Finding("open-relay", "ok", summary, evidence)
    if not foreign:
        forms = ", ".join(f"<{a}>" for a in dict.fromkeys(tally.accepted))
        summary = (
            f"accepted at RCPT: {forms}, but these forms address this server itself: a "
            "local catch-all accepts them too and delivers them locally; RCPT acceptance "
            "is no proof of relaying (check where such mail goes)"
        )
        return Finding("open-relay", "warn", summary, evidence, cause="local-form")
    forms = ", ".join(f"<{a}>" for a in dict.fromkeys(foreign[:6]))
    if inside is not None:
        summary = (
            f"relaying accepted without AUTH ({forms}), but {inside}: this address is "
            "probably in the server's trusted networks (mynetworks); test from outside"
        )
        return Finding("open-relay", "warn", summary, evidence)
    summary = f"open relay: recipients at {RELAY_DOMAIN} accepted without AUTH ({forms})"
    return Finding("open-relay", "fail", summary, evidence, None, ExitStatus.PROTOCOL)


def _untested(tally: Tally) -> str:
    shown = "; ".join(tally.untested[:4])
    more = len(tally.untested) - 4
    return shown + (f"; {more} more" if more > 0 else "")
