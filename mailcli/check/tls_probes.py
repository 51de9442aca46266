"""The audit's TLS probes, for SMTP and POP3: `tls-versions`, `weak-ciphers`, `certificate`.

Each probe opens its own connections (STARTTLS or STLS first when the endpoint says so)
with a client context made for the question: TLS 1.0 only, anonymous suites only, ...
A handshake the server refuses is the good answer; one the *local* OpenSSL cannot even
start (a version or suite compiled out or disabled by its configuration) says nothing
about the server, so it is `skipped` "not testable here", never "refused".

Grading follows the port: on 25 (server to server, opportunistic TLS) a weakness is
milder than on the client ports (587, 465, 110, 995, ...), where RFC 8996 forbids
TLS 1.0/1.1 and a client's password travels inside the TLS.
"""

from __future__ import annotations

import contextlib
import ssl
import warnings
from collections.abc import Callable, Iterator

from mailcli.check.cert_probe import CertificateFacts, grade_certificate
from mailcli.check.findings import AuditTarget, Finding, Level, could_not_run, skipped
from mailcli.check.raw import RawConnection, ServerUnavailable
from mailcli.endpoint import MailProtocol
from mailcli.errors import MailcliError
from mailcli.network import tls_context
from mailcli.tlsinfo import certificate_info

WEAK_SECLEVEL = "@SECLEVEL=0"  # lets this OpenSSL offer what its defaults forbid


class PreludeError(Exception):
    """The server would not start TLS (no STARTTLS/STLS, or refused it)."""


def is_opportunistic(target: AuditTarget) -> bool:
    """SMTP on port 25: server-to-server mail, where TLS is opportunistic."""
    return target.protocol == "smtp" and target.endpoint.port == 25


def unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@contextlib.contextmanager
def tls_connection(target: AuditTarget, context: ssl.SSLContext) -> Iterator[RawConnection]:
    """A RawConnection after the TLS handshake with `context`: implicit TLS, or the
    greeting and STARTTLS (SMTP) / STLS (POP3) first. Raises ssl.SSLError when the
    handshake fails, PreludeError when the server will not start TLS, OSError else."""
    conn = RawConnection.open(target, plain=True)
    try:
        handshake(conn, target, context)
        yield conn
    finally:
        conn.close()


def handshake(conn: RawConnection, target: AuditTarget, context: ssl.SSLContext) -> None:
    """TLS on a fresh connection: at once (implicit TLS), or after STARTTLS/STLS."""
    if target.endpoint.security == "tls":
        conn.start_tls(context, target.endpoint.host)
    else:
        start_tls_in_band(conn, target, context)


def start_tls_in_band(conn: RawConnection, target: AuditTarget, context: ssl.SSLContext) -> None:
    """Greeting, then EHLO + STARTTLS or STLS, then the handshake."""
    if target.protocol == "smtp":
        if _smtp_code(conn) != 220:
            raise PreludeError("no 220 greeting")
        conn.send(b"EHLO mailcli-audit.invalid\r\n")
        if _smtp_code(conn) != 250:
            raise PreludeError("EHLO refused")
        conn.send(b"STARTTLS\r\n")
        if _smtp_code(conn) != 220:
            raise PreludeError("STARTTLS refused or not offered")
    else:
        greeting = conn.read_line()
        if greeting is None or not greeting.startswith(b"+OK"):
            raise PreludeError("no +OK greeting")
        conn.send(b"STLS\r\n")
        answer = conn.read_line()
        if answer is None or not answer.startswith(b"+OK"):
            raise PreludeError("STLS refused or not offered")
    conn.start_tls(context, target.endpoint.host)


def _smtp_code(conn: RawConnection) -> int | None:
    reply = conn.read_smtp_reply()
    return None if reply is None else reply[0]


def local_refusal(context: ssl.SSLContext) -> str | None:
    """Why this OpenSSL cannot even write a ClientHello with `context` (None: it can).
    Made in memory: nothing is sent."""
    hello = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    try:
        hello.do_handshake()
    except ssl.SSLWantReadError:  # the ClientHello is written: the server's turn
        return None
    except ssl.SSLError as exc:
        return str(exc.reason or exc)
    return None


def attempt(target: AuditTarget, context: ssl.SSLContext) -> tuple[bool, list[str]]:
    """(accepted, evidence) of one handshake with `context`; the evidence keeps the
    prelude. PreludeError and OSError other than TLS (refused, timeout) propagate."""
    with contextlib.closing(RawConnection.open(target, plain=True)) as conn:
        try:
            handshake(conn, target, context)
        except ssl.SSLError as exc:
            conn.note(f"TLS handshake refused: {exc.reason or exc}")
            return False, conn.evidence
        sock = conn.sock
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            conn.note(f"accepted: {sock.version()} {cipher[0] if cipher else '?'}")
        return True, conn.evidence


Probe = Callable[[AuditTarget], list[Finding]]


def guarded(probe_id: str) -> Callable[[Probe], Probe]:
    """A probe whose connection fails is `skipped` with the reason, never an exception
    out of the audit. Without STARTTLS/STLS the TLS probes do not apply; any other
    failure (a reset, a timeout: e.g. a server past its per-client limit accepts and
    drops) means the probe applies but could not run, so the audit is incomplete."""

    def wrap(probe: Probe) -> Probe:
        def run(target: AuditTarget) -> list[Finding]:
            try:
                return probe(target)
            except PreludeError as exc:
                return [skipped(probe_id, f"could not start TLS: {exc}")]
            except ServerUnavailable as exc:  # the server stayed at its connection limit
                return [could_not_run(probe_id, f"could not test: {exc.message}", exc.evidence)]
            except OSError as exc:
                return [could_not_run(probe_id, f"could not test: {exc.strerror or exc}")]
            except MailcliError as exc:  # e.g. --cafile names no CA bundle
                return [could_not_run(probe_id, f"could not test: {exc.message}")]

        run.__name__ = probe.__name__
        run.__doc__ = probe.__doc__
        return run

    return wrap


# --- tls-versions -------------------------------------------------------------------

_OLD_VERSIONS = (("TLSv1.0", "TLSv1", "HAS_TLSv1"), ("TLSv1.1", "TLSv1_1", "HAS_TLSv1_1"))


def _version_context(member: str) -> ssl.SSLContext:
    context = unverified_context()
    with warnings.catch_warnings():  # ssl warns that these versions are deprecated: we know
        warnings.simplefilter("ignore", DeprecationWarning)
        version = getattr(ssl.TLSVersion, member)
        context.minimum_version = version
        context.maximum_version = version
    context.set_ciphers(f"DEFAULT:{WEAK_SECLEVEL}")
    return context


@guarded("tls-versions")
def probe_tls_versions(target: AuditTarget) -> list[Finding]:
    if target.endpoint.security == "none":
        return [skipped("tls-versions", "the endpoint is cleartext (--security none)")]
    accepted, untestable, evidence = [], [], []
    for name, member, flag in _OLD_VERSIONS:
        reason = _untestable_version(member, flag)
        if reason:
            untestable.append(f"{name} ({reason})")
            evidence.append(f"== {name} not testable here: {reason}")
            continue
        ok, lines = attempt(target, _version_context(member))
        evidence += [f"-- {name}", *lines]
        if ok:
            accepted.append(name)
    return [_grade_versions(target, accepted, untestable, tuple(evidence))]


def _untestable_version(member: str, flag: str) -> str | None:
    if not getattr(ssl, flag, False) or not hasattr(ssl.TLSVersion, member):
        return "this Python's OpenSSL has no such version"
    try:
        return local_refusal(_version_context(member))
    except (ValueError, ssl.SSLError) as exc:
        return str(exc)


def _grade_versions(
    target: AuditTarget, accepted: list[str], untestable: list[str], evidence: tuple[str, ...]
) -> Finding:
    fix = _versions_fix(target.protocol)
    if accepted:
        level: Level = "warn" if is_opportunistic(target) else "fail"
        return Finding(
            "tls-versions",
            level,
            f"accepts {' and '.join(accepted)} (deprecated by RFC 8996)",
            evidence,
            fix,
        )
    if len(untestable) == len(_OLD_VERSIONS):
        return Finding(
            "tls-versions", "skipped", "not testable here: " + "; ".join(untestable), evidence
        )
    summary = "refuses TLS 1.0 and 1.1"
    if untestable:
        summary = f"refuses what could be tried; not testable here: {'; '.join(untestable)}"
    return Finding("tls-versions", "ok", summary, evidence)


def _versions_fix(protocol: MailProtocol) -> str:
    if protocol == "pop3":
        return "Dovecot: ssl_min_protocol = TLSv1.2"
    return (
        "Postfix: smtpd_tls_protocols = >=TLSv1.2 and smtpd_tls_mandatory_protocols = "
        ">=TLSv1.2; Exim: openssl_options = +no_tlsv1 +no_tlsv1_1"
    )


# --- weak-ciphers -------------------------------------------------------------------

# (name, OpenSSL cipher string, level on port 25, level on client ports). The two
# anonymous key exchanges are tried apart: a server without DH parameters that prefers
# the client's order picks an ADH suite it cannot finish and drops the handshake, though
# it would have accepted AECDH.
_WEAK_SUITES: tuple[tuple[str, str, Level, Level], ...] = (
    ("anonymous ECDH (AECDH, aNULL)", "AECDH:!eNULL", "info", "fail"),
    ("anonymous DH (ADH, aNULL)", "ADH:!eNULL", "info", "fail"),
    ("static RSA key exchange (kRSA)", "kRSA:!aNULL:!eNULL", "info", "warn"),
    ("CBC with SHA-1", "SHA1:!aNULL:!eNULL:!kRSA:!RC4:!3DES", "info", "warn"),
)
_LEVEL_ORDER: tuple[Level, ...] = ("skipped", "ok", "info", "warn", "fail")


def _suite_context(suites: str) -> ssl.SSLContext:
    context = unverified_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3's suites are fixed
    context.set_ciphers(f"{suites}:{WEAK_SECLEVEL}")
    return context


@guarded("weak-ciphers")
def probe_weak_ciphers(target: AuditTarget) -> list[Finding]:
    if target.endpoint.security == "none":
        return [skipped("weak-ciphers", "the endpoint is cleartext (--security none)")]
    level: Level = "ok"
    accepted, untestable, evidence = [], [], []
    for name, suites, on_25, on_client in _WEAK_SUITES:
        try:
            context = _suite_context(suites)
            reason = local_refusal(context)
        except ssl.SSLError as exc:  # no such suites in this OpenSSL
            reason = str(exc.reason or exc)
        if reason:
            untestable.append(name)
            evidence.append(f"== {name}: not testable here: {reason}")
            continue
        ok, lines = attempt(target, context)
        evidence += [f"-- {name}", *lines]
        if ok:
            accepted.append(name)
            graded = on_25 if is_opportunistic(target) else on_client
            level = max(level, graded, key=_LEVEL_ORDER.index)
    return [_grade_ciphers(target, level, accepted, untestable, tuple(evidence))]


def _grade_ciphers(
    target: AuditTarget,
    level: Level,
    accepted: list[str],
    untestable: list[str],
    evidence: tuple[str, ...],
) -> Finding:
    if accepted:
        summary = "accepts " + ", ".join(accepted)
        if is_opportunistic(target):
            summary += " (port 25: opportunistic TLS, better than cleartext)"
        return Finding("weak-ciphers", level, summary, evidence, _ciphers_fix(target.protocol))
    if len(untestable) == len(_WEAK_SUITES):
        return skipped("weak-ciphers", "not testable here: " + ", ".join(untestable))._replace(
            evidence=evidence
        )
    summary = "refuses anonymous (ECDH and DH), static-RSA and CBC-SHA1 suites (TLS 1.2)"
    if untestable:
        summary += f"; not testable here: {', '.join(untestable)}"
    return Finding("weak-ciphers", "ok", summary, evidence)


def _ciphers_fix(protocol: MailProtocol) -> str:
    if protocol == "pop3":
        return "Dovecot: ssl_cipher_list = ECDHE+AESGCM:ECDHE+CHACHA20 (and ssl_min_protocol)"
    return (
        "Postfix: smtpd_tls_exclude_ciphers = aNULL, kRSA, SHA1 (client ports: "
        "smtpd_tls_mandatory_exclude_ciphers too); Exim: tls_require_ciphers"
    )


# --- certificate --------------------------------------------------------------------


@guarded("certificate")
def probe_certificate(target: AuditTarget) -> list[Finding]:
    """Verify against the endpoint's CA file (else the system store) and the host name;
    on a verification error, a second, unverified handshake collects the details."""
    if target.endpoint.security == "none":
        return [skipped("certificate", "the endpoint is cleartext (--security none)")]
    context = tls_context(target.endpoint._replace(insecure=False))
    # The chain is judged here, the key size apart: OpenSSL's security level would
    # otherwise fail a small key as a broken chain.
    context.set_ciphers(f"DEFAULT:{WEAK_SECLEVEL}")
    try:
        facts = _certificate_facts(target, context, None, None)
    except ssl.SSLCertVerificationError as exc:
        code, message = exc.verify_code, exc.verify_message
        facts = _certificate_facts(target, unverified_context(), code, message)
    return [grade_certificate(facts, _certificate_fix(target.protocol))]


def _certificate_facts(
    target: AuditTarget, context: ssl.SSLContext, code: int | None, message: str | None
) -> CertificateFacts:
    with tls_connection(target, context) as conn:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        return CertificateFacts(
            host=target.endpoint.host,
            info=certificate_info(sock),
            der=sock.getpeercert(binary_form=True) or b"",
            verify_code=code,
            verify_message=message,
            presented=_presented_chain(sock),
        )


def _presented_chain(sock: ssl.SSLSocket) -> tuple[str, ...]:
    """The certificates as the server sent them, "subject <- issuer" (Python 3.13 has
    this public; 3.11's is private, so without it the evidence just lacks the chain)."""
    chain = getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", lambda: None)()
    links = []
    for certificate in chain or ():
        info = certificate.get_info()
        subject = _common_name(info.get("subject", ()))
        links.append(f"{subject} <- {_common_name(info.get('issuer', ()))}")
    return tuple(links)


def _common_name(rdns: object) -> str:
    pairs = [pair for rdn in rdns for pair in rdn] if isinstance(rdns, tuple) else []
    return ", ".join(f"{key}={value}" for key, value in pairs) or "?"


def _certificate_fix(protocol: MailProtocol) -> str:
    where = (
        "Dovecot: ssl_cert = <fullchain.pem"
        if protocol == "pop3"
        else ("Postfix: smtpd_tls_chain_files = key.pem, fullchain.pem")
    )
    return (
        f"serve the leaf with its intermediates ({where}), for the name clients use, "
        "with an RSA key of 2048 bits or more (or ECDSA), and renew before it expires"
    )


TLS_PROBES: list[Callable[[AuditTarget], list[Finding]]] = [
    probe_tls_versions,
    probe_weak_ciphers,
    probe_certificate,
]
