"""The audit's POP3 probes: `stls-injection`, `auth-before-tls`, `apop`, `banner`,
`login-delay` (the TLS probes for POP3 are in tls_probes).

Each probe opens its own bounded RawConnection, says as little as it can and QUITs. The
only login attempts are login-delay's three, as a random user that does not exist with
a random password (masked in the evidence like any password), over TLS when the
endpoint has it, so nothing is ever tried in clear that a real client would send.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator

from mailcli.check.findings import AuditTarget, Finding, skipped
from mailcli.check.raw import RawConnection
from mailcli.check.tls_probes import PreludeError, guarded, tls_connection, unverified_context

INJECTION_WAIT = 1.0  # seconds to wait for an unasked reply after the handshake
LOGIN_ATTEMPTS = 3  # never more: the probe must not lock anybody out
SLOW_ENOUGH = 1.0  # a median answer to a failed login under this many seconds: warn
CLEARTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
_APOP_TIMESTAMP = re.compile(rb"<[^<>@\s]+@[^<>\s]+>")
_VERSION = re.compile(rb"\b\d+\.\d+(?:\.\d+)*\b")


def _greeting(conn: RawConnection) -> bytes:
    greeting = conn.read_line()
    if greeting is None or not greeting.startswith(b"+OK"):
        raise PreludeError("no +OK greeting")
    return greeting


def _multiline(conn: RawConnection) -> list[bytes] | None:
    """A multi-line response's lines (None after -ERR or silence)."""
    status = conn.read_line()
    if status is None or not status.startswith(b"+OK"):
        return None
    lines: list[bytes] = []
    while (line := conn.read_line()) is not None and line != b".":
        lines.append(line)
    return lines


def _quit(conn: RawConnection) -> None:
    with contextlib.suppress(OSError):
        conn.send(b"QUIT\r\n")
        conn.read_line()


@contextlib.contextmanager
def _clear(target: AuditTarget) -> Iterator[tuple[RawConnection, bytes]]:
    """A cleartext connection and its greeting (implicit TLS when that is all there is)."""
    if target.endpoint.security == "tls":
        conn = RawConnection.open(target, context=unverified_context())
    else:
        conn = RawConnection.open(target, plain=True)
    with contextlib.closing(conn):
        greeting = _greeting(conn)
        yield conn, greeting
        _quit(conn)


# --- stls-injection -----------------------------------------------------------------


@guarded("stls-injection")
def probe_stls_injection(target: AuditTarget) -> list[Finding]:
    """`STLS` and `CAPA` in one write: a CAPA answered inside TLS, unasked, means the
    server kept cleartext input across the handshake (the CVE-2011-0411 class)."""
    if target.endpoint.security == "tls":
        return [skipped("stls-injection", "implicit TLS: there is no STLS to inject after")]
    with contextlib.closing(RawConnection.open(target, plain=True)) as conn:
        _greeting(conn)
        conn.send(b"STLS\r\nCAPA\r\n")
        answer = conn.read_line()
        if answer is None or not answer.startswith(b"+OK"):
            # Nothing read in clear can be carried into a TLS that never starts.
            evidence = tuple(conn.evidence)
            return [Finding("stls-injection", "ok", "no STLS: nothing to inject into", evidence)]
        if leftover := conn.take_buffered():
            conn.note(f"in clear after the STLS reply: {leftover!r}")
        try:
            conn.start_tls(unverified_context(), target.endpoint.host)
        except OSError as exc:  # ssl.SSLError too
            conn.note(f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return [_dropped_after_injection(target, tuple(conn.evidence))]
        unasked = conn.read_line_within(INJECTION_WAIT)
        if unasked is None:
            conn.note(f"nothing unasked within {INJECTION_WAIT:g} s of the handshake")
            _quit(conn)
            return [
                Finding(
                    "stls-injection",
                    "ok",
                    "input sent before the handshake is discarded",
                    tuple(conn.evidence),
                )
            ]
        return [_injection_fail(conn)]


def _dropped_after_injection(target: AuditTarget, evidence: tuple[str, ...]) -> Finding:
    """The handshake after the injected STLS failed: Dovecot, for one, hangs up on input
    pipelined after STLS. A clean STLS on a second connection tells that apart from a
    server whose TLS fails anyway."""
    with tls_connection(target, unverified_context()) as control:
        pass
    evidence += ("-- control: STLS alone", *control.evidence)
    return Finding(
        "stls-injection",
        "ok",
        "the server hangs up on input pipelined after STLS (a clean STLS works)",
        evidence,
    )


def _injection_fail(conn: RawConnection) -> Finding:
    return Finding(
        "stls-injection",
        "fail",
        "answered, inside TLS, the CAPA sent in clear with STLS: an attacker can inject "
        "commands into the encrypted session (CVE-2011-0411 class, 'NO STARTTLS')",
        tuple(conn.evidence),
        "upgrade the POP3 server: after STLS it must discard everything the client sent "
        "before the handshake (Dovecot does)",
    )


# --- auth-before-tls ----------------------------------------------------------------


@guarded("auth-before-tls")
def probe_auth_before_tls(target: AuditTarget) -> list[Finding]:
    """USER, or SASL PLAIN/LOGIN, in CAPA before STLS: a password may travel in clear.
    An advertised USER is tried with a random name that exists nowhere: a server that
    refuses it until TLS (Courier's POP3_TLS_REQUIRED) keeps passwords out of the clear.
    From the server's own address only Dovecot is known to offer more than it offers
    others (it treats that client as secure): any other server is graded as seen."""
    if target.endpoint.security == "tls":
        return [skipped("auth-before-tls", "implicit TLS: nothing is sent in clear")]
    with contextlib.closing(RawConnection.open(target, plain=True)) as conn:
        greeting = _greeting(conn)
        local, peer = conn.sock.getsockname()[0], conn.sock.getpeername()[0]
        conn.send(b"CAPA\r\n")
        capabilities = _multiline(conn)
        offered = _cleartext_logins(capabilities or [])
        if "USER" in offered and _user_refused_in_clear(conn):
            offered.remove("USER")
        conn.send(b"QUIT\r\n")
        farewell = conn.read_line()
    evidence = tuple(conn.evidence)
    if capabilities is None:
        return [Finding("auth-before-tls", "info", "no CAPA (RFC 2449): cannot tell", evidence)]
    if not offered:
        return [Finding("auth-before-tls", "ok", "no cleartext login before STLS", evidence)]
    summary = f"offers {', '.join(offered)} before STLS: passwords can travel in clear"
    dovecot = is_dovecot(greeting, farewell)
    fix = _AUTH_FIX_DOVECOT if dovecot else _AUTH_FIX_UNKNOWN
    if local == peer and dovecot:
        summary += (
            f"; but the tester connects from the server's own address ({local}), which "
            "Dovecot treats as secure: run again with --source-address or from another host"
        )
        return [Finding("auth-before-tls", "info", summary, evidence, fix, cause="pop3")]
    return [Finding("auth-before-tls", "fail", summary, evidence, fix, cause="pop3")]


_TLS_REQUIRED = re.compile(rb"TLS|SSL|STLS|encrypt|secure", re.IGNORECASE)


def _user_refused_in_clear(conn: RawConnection) -> bool:
    """USER with a name that exists nowhere: a -ERR that asks for TLS means the server
    takes no login in clear (any other answer: USER is as offered)."""
    conn.send(f"USER audit-{secrets.token_hex(6)}\r\n".encode())
    answer = conn.read_line()
    return answer is not None and answer.startswith(b"-ERR") and bool(_TLS_REQUIRED.search(answer))


_AUTH_FIX_DOVECOT = "Dovecot: disable_plaintext_auth = yes (2.4: auth_allow_cleartext = no)"
_AUTH_FIX_UNKNOWN = (
    "unknown server: general advice: offer USER and SASL PLAIN/LOGIN only after STLS "
    "(or on implicit TLS, port 995)"
)


def is_dovecot(greeting: bytes, farewell: bytes | None) -> bool:
    """Dovecot by its default greeting, or by its login process's answer to QUIT (which
    stays when login_greeting is changed)."""
    return b"Dovecot" in greeting or farewell == b"+OK Logging out"


def _cleartext_logins(capabilities: list[bytes]) -> list[str]:
    offered = []
    for line in capabilities:
        words = line.decode("ascii", "replace").upper().split()
        if words[:1] == ["USER"]:
            offered.append("USER")
        elif words[:1] == ["SASL"]:
            offered += [f"SASL {m}" for m in words[1:] if m in CLEARTEXT_MECHANISMS]
    return offered


# --- apop and banner ----------------------------------------------------------------


@guarded("apop")
def probe_apop(target: AuditTarget) -> list[Finding]:
    """A `<...@...>` timestamp in the greeting advertises APOP (RFC 1939)."""
    with _clear(target) as (conn, greeting):
        pass
    evidence = tuple(conn.evidence)
    if _APOP_TIMESTAMP.search(greeting) is None:
        return [Finding("apop", "ok", "APOP not offered (no timestamp in the greeting)", evidence)]
    return [
        Finding(
            "apop",
            "warn",
            "APOP offered (timestamp in the greeting): MD5 challenge-response, and the "
            "server must keep every password in plaintext-equivalent form",
            evidence,
            "Dovecot: auth_mechanisms without apop (e.g. auth_mechanisms = plain login)",
        )
    ]


@guarded("banner")
def probe_banner(target: AuditTarget) -> list[Finding]:
    """A version number in the greeting tells an attacker which exploits to try."""
    with _clear(target) as (conn, greeting):
        pass
    evidence = tuple(conn.evidence)
    text = _APOP_TIMESTAMP.sub(b"", greeting)
    version = _VERSION.search(text)
    if version is None:
        return [Finding("banner", "ok", "the greeting discloses no version", evidence)]
    return [
        Finding(
            "banner",
            "warn",
            f"the greeting discloses a version ({version.group().decode()})",
            evidence,
            'Dovecot: login_greeting = POP3 ready. (its default "Dovecot ready." names no version)',
        )
    ]


# --- login-delay --------------------------------------------------------------------


@contextlib.contextmanager
def _login_channel(target: AuditTarget) -> Iterator[RawConnection]:
    """Where a client would log in: after STLS, on implicit TLS, or in clear for `none`."""
    if target.endpoint.security == "none":
        with _clear(target) as (conn, _):
            yield conn
        return
    with tls_connection(target, unverified_context()) as conn:
        if target.endpoint.security == "tls":
            _greeting(conn)
        yield conn
        _quit(conn)


@guarded("login-delay")
def probe_login_delay(target: AuditTarget) -> list[Finding]:
    """Three failed logins as a random, non-existent user; the median answer time."""
    user = f"audit-{secrets.token_hex(6)}"
    seconds: list[float] = []
    evidence: list[str] = []
    for _ in range(LOGIN_ATTEMPTS):
        with _login_channel(target) as conn:
            answer = _failed_login(conn, user, secrets.token_urlsafe(12))
            evidence += conn.evidence
        if answer is None:
            return [skipped("login-delay", "USER refused: cannot try a login")]
        seconds.append(answer)
        evidence.append(f"== answered in {answer:.2f} s")
    return [_grade_delay(statistics.median(seconds), tuple(evidence))]


def _failed_login(conn: RawConnection, user: str, password: str) -> float | None:
    """Seconds from PASS to its answer (or to the read's bound); None if USER is refused."""
    conn.send(f"USER {user}\r\n".encode())
    answer = conn.read_line()
    if answer is None or not answer.startswith(b"+OK"):
        return None
    started = time.monotonic()
    conn.send(f"PASS {password}\r\n".encode())
    conn.read_line()  # -ERR, or silence until the bound: either way, the time is the answer
    return time.monotonic() - started


def _grade_delay(median: float, evidence: tuple[str, ...]) -> Finding:
    if median >= SLOW_ENOUGH:
        return Finding("login-delay", "ok", f"failed logins answered in {median:.2f} s", evidence)
    return Finding(
        "login-delay",
        "warn",
        f"failed logins answered in {median:.2f} s (median of {LOGIN_ATTEMPTS}): password "
        "guessing is cheap",
        evidence,
        "Dovecot: auth_failure_delay = 2 secs (the default), and no nodelay passdb extra "
        "field; fail2ban or a firewall rate limit on top",
    )


POP3_PROBES: list[Callable[[AuditTarget], list[Finding]]] = [
    probe_stls_injection,
    probe_auth_before_tls,
    probe_apop,
    probe_banner,
    probe_login_delay,
]
