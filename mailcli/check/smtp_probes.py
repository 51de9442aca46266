"""The audit's SMTP probes (ids as the README lists them), each `(AuditTarget) -> list[Finding]`.

Nothing here sends DATA (only `smuggling.py` does, and only to --audit-rcpt); every
transaction a probe opens ends with RSET, every conversation with QUIT. Each read is
bounded by the target's probe timeout, and a probe makes a fixed number of them. Probes
give no fix: the audit takes it from the catalogue (software.py), for the software that
answered.
"""

from __future__ import annotations

import base64
import secrets
import statistics
import time
from collections.abc import Callable

from mailcli.auth.sasl import plain
from mailcli.check.findings import AuditTarget, Finding, skipped
from mailcli.check.relay_probe import probe_open_relay
from mailcli.check.smtp_raw import ProbeError, SmtpDialog, domain_of, one_line
from mailcli.check.tls_probes import unverified_context
from mailcli.errors import ExitStatus

LOGIN_ATTEMPTS = 3
LOGIN_DELAY_FLOOR = 1.0  # seconds: a failed login answered faster invites guessing


def _random_local() -> str:
    return f"mailcli-audit-{secrets.token_hex(4)}"


# --- starttls-injection -------------------------------------------------------------


def probe_starttls_injection(target: AuditTarget) -> list[Finding]:
    """`STARTTLS\\r\\nNOOP\\r\\n` in one write; after the handshake we send QUIT: a reply
    before the 221 answers the NOOP sent in clear (CVE-2011-0411, "NO STARTTLS"). Asking
    with QUIT, not waiting for an unasked line, makes the answer independent of timing."""
    if target.endpoint.security == "tls":
        return [skipped("starttls-injection", "implicit TLS: no STARTTLS to inject after")]
    with SmtpDialog.open(target, starttls=False) as smtp:
        if "starttls" not in smtp.features:
            return [skipped("starttls-injection", "the server does not offer STARTTLS")]
        smtp.conn.send(b"STARTTLS\r\nNOOP\r\n")
        code, lines = smtp.reply()
        if code // 100 == 5:  # e.g. Exim's 554 synchronization error: nothing to inject into
            summary = f"refuses STARTTLS with input pipelined after it ({one_line(lines)})"
            return [Finding("starttls-injection", "ok", summary, smtp.evidence)]
        if code != 220:
            raise ProbeError(f"STARTTLS refused: {one_line(lines)}")
        if leftover := smtp.conn.take_buffered():
            smtp.conn.note(f"in clear after the STARTTLS reply: {leftover!r}")
        try:
            smtp.conn.start_tls(unverified_context(), target.endpoint.host)
        except OSError as exc:  # ssl.SSLError too: dropped the connection over the NOOP
            smtp.conn.note(f"TLS handshake failed: {exc}")
            summary = "hangs up on input pipelined after STARTTLS"
            return [Finding("starttls-injection", "ok", summary, smtp.evidence)]
        return [_injection_finding(smtp.command("QUIT")[0] == 221, smtp.evidence)]


def _injection_finding(discarded: bool, evidence: tuple[str, ...]) -> Finding:
    if discarded:
        summary = "input sent before the TLS handshake is discarded"
        return Finding("starttls-injection", "ok", summary, evidence)
    return Finding(
        "starttls-injection",
        "fail",
        "answered, inside TLS, a NOOP sent in clear with STARTTLS: commands can be "
        "injected into the encrypted session (CVE-2011-0411, 'NO STARTTLS')",
        evidence,
        None,  # the audit's fix catalogue gives it, for the software that answered
        ExitStatus.PROTOCOL,
    )


# --- user-enumeration ---------------------------------------------------------------


def probe_user_enumeration(target: AuditTarget) -> list[Finding]:
    if target.audit_rcpt is None:
        return [skipped("user-enumeration", "needs --audit-rcpt: an address known to exist")]
    unknown = f"{_random_local()}@{domain_of(target.audit_rcpt)}"
    with SmtpDialog.open(target) as smtp:
        answers = {
            verb: (
                smtp.command(f"{verb} <{target.audit_rcpt}>"),
                smtp.command(f"{verb} <{unknown}>"),
            )
            for verb in ("VRFY", "EXPN")
        }
        smtp.command(f"MAIL FROM:<{target.audit_rcpt}>")
        known_rcpt = smtp.command(f"RCPT TO:<{target.audit_rcpt}>")[0]
        unknown_rcpt = smtp.command(f"RCPT TO:<{unknown}>")[0]
        smtp.command("RSET")
        smtp.quit()
    telling = [verb for verb, (known, other) in answers.items() if known[0] != other[0]]
    return [_grade_enumeration(telling, known_rcpt != unknown_rcpt, smtp.evidence)]


def _grade_enumeration(telling: list[str], rcpt_tells: bool, evidence: tuple[str, ...]) -> Finding:
    if telling:
        return Finding(
            "user-enumeration",
            "warn",
            f"{' and '.join(telling)} tell existing addresses from unknown ones",
            evidence,
        )
    if rcpt_tells:
        return Finding(
            "user-enumeration",
            "info",
            "VRFY/EXPN tell nothing; RCPT accepts existing addresses and refuses unknown "
            "ones (inherent to SMTP): limit the rate of guesses",
            evidence,
            None,
            cause="rcpt",
        )
    return Finding("user-enumeration", "ok", "no answer tells users apart", evidence)


# --- auth-before-tls ----------------------------------------------------------------

# SASL mechanisms that send a proof of the password, never the password itself (e.g.
# Sendmail's defaults, DIGEST-MD5 and CRAM-MD5).
CHALLENGE_RESPONSE = ("CRAM-MD5", "DIGEST-MD5", "SCRAM-")


def probe_auth_before_tls(target: AuditTarget) -> list[Finding]:
    if target.endpoint.security == "tls":
        return [Finding("auth-before-tls", "ok", "implicit TLS: nothing is said in clear")]
    with SmtpDialog.open(target, starttls=False) as smtp:
        mechanisms = smtp.features.get("auth", "")
        smtp.quit()
    if not mechanisms:
        return [Finding("auth-before-tls", "ok", "no AUTH offered before TLS", smtp.evidence)]
    summary = f"AUTH {mechanisms} offered before STARTTLS: passwords can travel in clear"
    if target.endpoint.port == 25:
        summary += " (port 25: MTA-to-MTA)"
        return [Finding("auth-before-tls", "info", summary, smtp.evidence, cause="port-25")]
    if all(m.upper().startswith(CHALLENGE_RESPONSE) for m in mechanisms.split()):
        summary = (
            f"AUTH {mechanisms} offered before STARTTLS: challenge-response only, so no "
            "password travels in clear, but user names do and a captured exchange can be "
            "cracked offline"
        )
        return [Finding("auth-before-tls", "warn", summary, smtp.evidence)]
    return [Finding("auth-before-tls", "fail", summary, smtp.evidence, None, ExitStatus.PROTOCOL)]


# --- unauth-pipelining --------------------------------------------------------------


def probe_unauth_pipelining(target: AuditTarget) -> list[Finding]:
    """`HELO x\\r\\nNOOP\\r\\n` in one write, before any EHLO has offered PIPELINING."""
    from mailcli.check.raw import RawConnection

    with RawConnection.open(target, context=unverified_context()) as conn:
        smtp = SmtpDialog(conn)
        if smtp.reply()[0] != 220:
            raise ProbeError("the server did not greet with 220")
        conn.send(b"HELO mailcli-audit.invalid\r\nNOOP\r\n")
        helo = conn.read_smtp_reply()
        noop = conn.read_smtp_reply() if helo is not None and helo[0] == 250 else None
        if noop is not None and noop[0] == 250:
            early = _offers_early_pipelining(smtp)
            smtp.quit()
            summary = (
                "commands pipelined without PIPELINING are answered (defence in depth "
                "against smuggling is off)"
            )
            if early:
                summary += "; the server offers PIPE_CONNECT (pipelining before the greeting)"
            return [
                Finding(
                    "unauth-pipelining",
                    "warn",
                    summary,
                    smtp.evidence,
                    cause="pipe-connect" if early else "",
                )
            ]
        smtp.quit()
        return [
            Finding("unauth-pipelining", "ok", "unauthorised pipelining is refused", smtp.evidence)
        ]


def _offers_early_pipelining(smtp: SmtpDialog) -> bool:
    """Whether EHLO offers PIPE_CONNECT (Exim): its clients may pipeline from the start,
    which is why it answers pipelined commands although it enforces synchronisation."""
    try:
        smtp.ehlo()
    except ProbeError:
        return False
    return bool(smtp.features.keys() & {"pipeconnect", "pipe_connect", "x_pipe_connect"})


# --- null-sender --------------------------------------------------------------------


def probe_null_sender(target: AuditTarget) -> list[Finding]:
    if target.audit_rcpt is None:
        return [skipped("null-sender", "needs --audit-rcpt: its domain's postmaster is asked")]
    postmaster = f"postmaster@{domain_of(target.audit_rcpt)}"
    with SmtpDialog.open(target) as smtp:
        mail = smtp.command("MAIL FROM:<>")
        rcpt = smtp.command(f"RCPT TO:<{postmaster}>") if mail[0] == 250 else mail
        smtp.command("RSET")
        smtp.quit()
    if rcpt[0] // 100 == 2:
        return [
            Finding("null-sender", "ok", f"MAIL FROM:<> to <{postmaster}> accepted", smtp.evidence)
        ]
    return [
        Finding(
            "null-sender",
            "fail",
            f"the null sender is refused ({one_line(rcpt[1])}): bounces and DSNs to this "
            "server are lost (RFC 5321 section 4.5.1 and 6.1)",
            smtp.evidence,
            None,
            ExitStatus.PROTOCOL,
        )
    ]


# --- size-limit ---------------------------------------------------------------------


def probe_size_limit(target: AuditTarget) -> list[Finding]:
    with SmtpDialog.open(target) as smtp:
        announced = smtp.features.get("size", "")
        if not announced.isdigit() or int(announced) == 0:
            smtp.quit()
            return [Finding("size-limit", "info", "no SIZE limit announced", smtp.evidence)]
        sender = target.audit_rcpt or ""
        code, lines = smtp.command(f"MAIL FROM:<{sender}> SIZE={int(announced) + 1}")
        smtp.command("RSET")
        smtp.quit()
    if code in (552, 452):
        summary = f"a declared size over the announced {announced} is refused at MAIL"
        return [Finding("size-limit", "ok", summary, smtp.evidence)]
    if code // 100 == 2:
        summary = f"SIZE={int(announced) + 1} accepted although {announced} is announced"
        return [Finding("size-limit", "warn", summary, smtp.evidence)]
    summary = f"MAIL refused for another reason: {one_line(lines)}"
    return [Finding("size-limit", "info", summary, smtp.evidence)]


# --- login-delay --------------------------------------------------------------------


def probe_login_delay(target: AuditTarget) -> list[Finding]:
    """At most LOGIN_ATTEMPTS failed logins, as a user that does not exist."""
    with SmtpDialog.open(target) as smtp:
        mechanisms = smtp.features.get("auth", "").upper().split()
        if "PLAIN" not in mechanisms:
            smtp.quit()
            return [skipped("login-delay", "no AUTH PLAIN offered on this connection")]
        user, password = _random_local(), secrets.token_hex(8)
        token = base64.b64encode(plain(user, password)).decode()
        seconds = []
        for _ in range(LOGIN_ATTEMPTS):
            started = time.monotonic()
            code, _lines = smtp.command(f"AUTH PLAIN {token}")
            seconds.append(time.monotonic() - started)
            if code // 100 == 2:
                raise ProbeError("the server accepted a random user and password")
        smtp.quit()
    median = statistics.median(seconds)
    evidence = (*smtp.evidence, f"== answers after {', '.join(f'{s:.3f}' for s in seconds)} s")
    if median < LOGIN_DELAY_FLOOR:
        return [
            Finding(
                "login-delay",
                "warn",
                f"failed logins answered in {median:.3f} s (median of {len(seconds)}): "
                "password guessing runs at full speed",
                evidence,
            )
        ]
    summary = f"failed logins are slowed down ({median:.3f} s median)"
    return [Finding("login-delay", "ok", summary, evidence)]


SMTP_PROBE_LIST: list[Callable[[AuditTarget], list[Finding]]] = [
    probe_starttls_injection,
    probe_open_relay,
    probe_user_enumeration,
    probe_auth_before_tls,
    probe_unauth_pipelining,
    probe_null_sender,
    probe_size_limit,
    probe_login_delay,
]
