"""What a TLS connection and its certificate look like: for `check` and the transcript;
and the two things a TLS context does beyond the CA store: pins and a client certificate.

The certificate is read even when verification failed (from its DER bytes), because a
server test wants to know *why*: wrong name, expired, unknown issuer.

Pinning (`--tls-fingerprint`, key `tls_fingerprint`): a fingerprint is the SHA-256 digest
of the server's leaf certificate (DER), written `SHA256:` + 64 hex digits (colons
optional, any case; `check` prints `SHA256:AB:CD:...`) or `SHA256:` + base64 as OpenSSH
writes digests. With pins the CA chain is not verified (a self-signed server is fine);
the leaf must match one pin and, unless --insecure, the host name must match the
certificate (RFC 6125: subjectAltName DNS names, one leading `*.` label; IP addresses).
`PinnedContext.wrap_socket` checks both as soon as the handshake completes, before it
returns, so no protocol byte (no EHLO, no credential) goes inside a connection that fails
them: the socket is closed and a `PinMismatch` (an SSLCertVerificationError) raised.

Client certificate (`--client-cert`, `--client-key`; PEM): loaded into the context. A
file missing or unreadable is 66, one that is not a PEM certificate or key, or a key
that does not match the certificate, is 78. An encrypted key's passphrase comes from
the `passphrase` callable given (never argv); without one, an encrypted key is 78 (and
OpenSSL never prompts on the terminal by itself).
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailcli.errors import ConfigError, MailcliError, NoInputError, PermissionDeniedError

_HEX_DIGITS = frozenset("0123456789abcdef")
# OpenSSL's reasons for an alert saying the server wanted a (valid) client certificate.
CLIENT_CERT_ALERTS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
    }
)


@dataclass
class CertificateInfo:
    subject: str = ""
    issuer: str = ""
    sans: list[str] = field(default_factory=list)
    not_after: str = ""
    days_left: int | None = None
    fingerprint: str = ""  # SHA256:AB:..., what --tls-fingerprint takes


@dataclass
class TlsInfo:
    version: str
    cipher: str
    certificate: CertificateInfo
    verified: bool
    verify_error: str | None = None
    pinned: bool = False  # trusted by --tls-fingerprint (the CA chain was not verified)

    def trace_lines(self) -> list[str]:
        cert = self.certificate
        status = "verified" if self.verified else f"NOT verified: {self.verify_error}"
        if self.pinned:
            status = "pinned: " + status
        return [
            f"TLS established: {self.version} {self.cipher}",
            f"certificate: subject {cert.subject}; issuer {cert.issuer}",
            f"certificate: names {', '.join(cert.sans) or '-'}; expires {cert.not_after} "
            f"({cert.days_left} days); {status}",
            f"certificate: fingerprint {cert.fingerprint or '-'}",
        ]


def describe(
    sock: ssl.SSLSocket, *, verified: bool = True, verify_error: str | None = None
) -> TlsInfo:
    cipher = sock.cipher()
    context = sock.context
    pinned = isinstance(context, PinnedContext)
    if isinstance(context, PinnedContext) and context.check_name:  # pin and name matched
        verified, verify_error = True, None
    return TlsInfo(
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        certificate=certificate_info(sock),
        verified=verified,
        verify_error=verify_error,
        pinned=pinned,
    )


def certificate_info(sock: ssl.SSLSocket) -> CertificateInfo:
    der = sock.getpeercert(binary_form=True)
    decoded: dict[str, Any] = dict(sock.getpeercert() or {}) or _decode_unverified(der)
    if not decoded:
        return CertificateInfo(fingerprint=fingerprint(der) if der else "")
    not_after = str(decoded.get("notAfter", ""))
    days = None
    if not_after:
        days = int((ssl.cert_time_to_seconds(not_after) - time.time()) // 86400)
    return CertificateInfo(
        subject=_name(decoded.get("subject", ())),
        issuer=_name(decoded.get("issuer", ())),
        sans=[str(entry[1]) for entry in decoded.get("subjectAltName", ())],
        not_after=not_after,
        days_left=days,
        fingerprint=fingerprint(der) if der else "",
    )


def _name(rdns: Any) -> str:
    return ", ".join(f"{key}={value}" for rdn in rdns for key, value in rdn)


def _decode_unverified(der: bytes | None) -> dict[str, Any]:
    """The stdlib decodes only verified certificates; its test helper decodes any PEM
    file. Without it (another Python), the report just lacks the details."""
    decode = getattr(ssl._ssl, "_test_decode_cert", None)  # type: ignore[attr-defined]
    if not der or decode is None:
        return {}
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(ssl.DER_cert_to_PEM_cert(der))
        return dict(decode(path))
    except (ssl.SSLError, ValueError, OSError):
        return {}
    finally:
        os.unlink(path)


def fingerprint(der: bytes) -> str:
    """`SHA256:AB:CD:...`: the leaf's digest as `check` prints it and pins are written."""
    import hashlib

    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def parse_fingerprint(text: str) -> bytes:
    """The 32-byte digest a pin names; ValueError saying what is wrong with it."""
    import base64
    import binascii

    algorithm, _, value = text.strip().partition(":")
    if algorithm.upper() != "SHA256" or not value:
        raise ValueError(f"{text!r} is not SHA256:<hex> or SHA256:<base64>")
    digits = value.replace(":", "").lower()
    if len(digits) == 64 and set(digits) <= _HEX_DIGITS:
        return bytes.fromhex(digits)
    try:
        digest = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise ValueError(
            f"{text!r} is not SHA256:<hex> (64 digits) or SHA256:<base64> (43 characters)"
        )
    return digest


class PinMismatch(ssl.SSLCertVerificationError):
    """The server's certificate matches no pin, or not the host name (closed already)."""

    def __init__(self, message: str) -> None:
        super().__init__(1, message)
        self.verify_message = message
        self.verify_code = 0


class PinnedContext(ssl.SSLContext):
    """A client context that trusts a leaf certificate by its digest (module docstring)."""

    pins: tuple[bytes, ...] = ()
    check_name = True

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        tls = super().wrap_socket(sock, *args, **kwargs)
        try:
            self._check(tls, kwargs.get("server_hostname"))
        except BaseException:
            tls.close()  # nothing more crosses this connection
            raise
        return tls

    def _check(self, tls: ssl.SSLSocket, host: str | None) -> None:
        der = tls.getpeercert(binary_form=True)
        if der is None:  # the handshake has not happened (do_handshake_on_connect=False)
            raise PinMismatch("no certificate to compare with the pinned fingerprints")
        import hashlib

        if hashlib.sha256(der).digest() not in self.pins:
            pinned = ", ".join(_as_text(pin) for pin in self.pins)
            raise PinMismatch(
                f"its fingerprint {fingerprint(der)} matches no --tls-fingerprint ({pinned})"
            )
        if self.check_name and host:
            decoded = _decode_unverified(der)
            if not name_matches(decoded, host):
                names = ", ".join(str(entry[1]) for entry in decoded.get("subjectAltName", ()))
                raise PinMismatch(
                    f"the pinned certificate is not valid for {host!r} (its names: {names or '-'})"
                )


def pinned_context(pins: tuple[str, ...], *, check_name: bool) -> PinnedContext:
    """A context that trusts the leaf whose digest is one of `pins` (already valid)."""
    context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # OpenSSL's check needs a verified chain: ours, below
    context.verify_mode = ssl.CERT_NONE
    context.pins = tuple(parse_fingerprint(pin) for pin in pins)
    context.check_name = check_name
    return context


def _as_text(digest: bytes) -> str:
    text = digest.hex().upper()
    return "SHA256:" + ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def name_matches(decoded: dict[str, Any], host: str) -> bool:
    """RFC 6125 on a decoded certificate: an IP host against its IP addresses, a name
    against its DNS names (a `*` only as the whole leftmost label). Never the CN."""
    import ipaddress

    names = decoded.get("subjectAltName", ())
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        wanted = host.rstrip(".").lower()
        return any(kind == "DNS" and _dns_match(str(v), wanted) for kind, v in names)
    for kind, value in names:
        if kind == "IP Address":
            try:
                if ipaddress.ip_address(str(value).strip()) == address:
                    return True
            except ValueError:
                continue
    return False


def _dns_match(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if not pattern.startswith("*."):
        return pattern == host
    _, dot, rest = host.partition(".")
    return bool(dot) and rest == pattern[2:] and "." in rest


def load_client_certificate(
    context: ssl.SSLContext,
    cert: str | None,
    key: str | None,
    passphrase: Callable[[], str] | None = None,
) -> None:
    """Our certificate (and key) into `context`; errors as the module docstring says."""
    if cert is None:
        raise ConfigError(
            f"--client-key {key} without --client-cert",
            hint="give the certificate too (--client-cert, key client_cert)",
        )
    for option, path in (("--client-cert", cert), ("--client-key", key)):
        if path is not None and not os.access(path, os.R_OK):
            why = "no such file" if not os.path.exists(path) else "not readable"
            raise NoInputError(f"{option} {path}: {why}")
    asked: list[bool] = []  # OpenSSL asked for a passphrase: the key is encrypted
    try:
        context.load_cert_chain(
            cert, key, password=_passphrase_source(passphrase, key or cert, asked)
        )
    except IsADirectoryError:
        raise NoInputError(f"--client-cert {cert}: a folder, not a PEM file") from None
    except ssl.SSLError as exc:
        raise _client_certificate_error(exc, cert, key, encrypted=bool(asked)) from None


def _passphrase_source(
    passphrase: Callable[[], str] | None, path: str, asked: list[bool]
) -> Callable[[], str]:
    """What OpenSSL calls for an encrypted key only; never None, or it would prompt."""

    def ask() -> str:
        if passphrase is None:
            raise ConfigError(
                f"--client-key {path}: the key is encrypted and no passphrase was given",
                hint="decrypt the key (openssl pkey -in KEY -out PLAIN.pem), or use a "
                "command that looks the passphrase up (send, pop3 commands, fetch, check)",
            )
        value = passphrase()
        asked.append(True)
        return value

    return ask


def _client_certificate_error(
    exc: ssl.SSLError, cert: str, key: str | None, *, encrypted: bool
) -> ConfigError:
    reason = str(exc.reason or exc)
    files = f"--client-cert {cert}" + (f" --client-key {key}" if key else "")
    if "MISMATCH" in reason:
        return ConfigError(f"{files}: the key does not belong to the certificate")
    if encrypted:  # OpenSSL says only "PEM lib" for a wrong passphrase
        return ConfigError(f"{files}: wrong passphrase for the encrypted key")
    return ConfigError(f"{files}: not a PEM certificate and private key ({reason})")


def tls_refusal(exc: ssl.SSLError, where: str) -> MailcliError | None:
    """77 for a pin not matched and for a server refusing us for want of a (trusted)
    client certificate (its alert arrives at the handshake, or with TLS 1.3 at the
    first read after it); None for any other TLS error."""
    if isinstance(exc, PinMismatch):
        return PermissionDeniedError(
            f"TLS certificate of {where} not trusted: {exc.verify_message}; nothing was sent",
            hint="compare with the fingerprint `mailcli check` prints (--tls-fingerprint)",
        )
    if exc.reason in CLIENT_CERT_ALERTS:
        return PermissionDeniedError(
            f"{where} refused the TLS connection: it wants a client certificate it trusts "
            f"({exc.reason})",
            hint="give --client-cert and --client-key (keys client_cert, client_key)",
        )
    return None
