"""What a TLS connection and its certificate look like: for `check` and the transcript.

The certificate is read even when verification failed (from its DER bytes), because a
server test wants to know *why*: wrong name, expired, unknown issuer.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CertificateInfo:
    subject: str = ""
    issuer: str = ""
    sans: list[str] = field(default_factory=list)
    not_after: str = ""
    days_left: int | None = None


@dataclass
class TlsInfo:
    version: str
    cipher: str
    certificate: CertificateInfo
    verified: bool
    verify_error: str | None = None

    def trace_lines(self) -> list[str]:
        cert = self.certificate
        status = "verified" if self.verified else f"NOT verified: {self.verify_error}"
        return [
            f"TLS established: {self.version} {self.cipher}",
            f"certificate: subject {cert.subject}; issuer {cert.issuer}",
            f"certificate: names {', '.join(cert.sans) or '-'}; expires {cert.not_after} "
            f"({cert.days_left} days); {status}",
        ]


def describe(
    sock: ssl.SSLSocket, *, verified: bool = True, verify_error: str | None = None
) -> TlsInfo:
    cipher = sock.cipher()
    return TlsInfo(
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        certificate=certificate_info(sock),
        verified=verified,
        verify_error=verify_error,
    )


def certificate_info(sock: ssl.SSLSocket) -> CertificateInfo:
    decoded: dict[str, Any] = dict(sock.getpeercert() or {}) or _decode_unverified(
        sock.getpeercert(binary_form=True)
    )
    if not decoded:
        return CertificateInfo()
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
