"""What SMTP and POP3 share below the protocol: TLS contexts and network-error mapping.

stdlib exceptions are translated here, where the protocol code calls the stdlib, into
the MailcliError that carries the right exit status:

| cause                                   | exit |
|-----------------------------------------|------|
| host name does not resolve              | 68   |
| connection refused / network unreachable| 69   |
| certificate not trusted, wrong host name| 77   |
| TLS handshake failed otherwise          | 69   |
| timeout, connection reset or dropped    | 75   |
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from mailcli.errors import (
    HostNotFoundError,
    MailcliError,
    NoInputError,
    PermissionDeniedError,
    TempFailError,
    UnavailableError,
)

if TYPE_CHECKING:
    import ssl

    from mailcli.endpoint import Endpoint
    from mailcli.transcript import Transcript


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Verify certificate and host name unless --insecure; TLS 1.2 at least.

    `--cafile` replaces the system's CA store, as curl's --cacert and msmtp's
    tls_trust_file do (and saves loading the whole store, ~20 ms, per connection).
    """
    import ssl

    try:
        context = ssl.create_default_context(cafile=endpoint.cafile)
    except FileNotFoundError:
        raise NoInputError(f"--cafile {endpoint.cafile}: no such file") from None
    except ssl.SSLError as exc:
        raise NoInputError(f"--cafile {endpoint.cafile}: not a PEM CA bundle") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if endpoint.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def translate(exc: BaseException, endpoint: Endpoint) -> MailcliError:
    """Map a stdlib network or TLS exception to the error with the documented status."""
    import ssl

    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, MailcliError):
        return exc
    if isinstance(exc, socket.gaierror):
        return HostNotFoundError(f"cannot resolve host {endpoint.host!r}: {exc.strerror}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermissionDeniedError(
            f"TLS certificate of {where} not trusted: {exc.verify_message}",
            hint="pass the CA with --cafile, or --insecure to skip verification (unsafe)",
        )
    if isinstance(exc, ssl.SSLError):
        return UnavailableError(f"TLS handshake with {where} failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError):
        return TempFailError(
            f"timed out talking to {where} after {endpoint.timeout:g} s",
            hint="a slow server? raise --timeout",
        )
    if isinstance(exc, ConnectionRefusedError):
        return UnavailableError(f"connection to {where} refused")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError)):
        return TempFailError(f"{where} closed the connection unexpectedly")
    if isinstance(exc, OSError) and exc.errno is not None:
        return UnavailableError(f"cannot connect to {where}: {exc.strerror}")
    return TempFailError(f"connection to {where} failed: {exc}")


def trace_tls(sock: object, transcript: Transcript) -> None:
    """`==` lines for the transcript: protocol, cipher, and the certificate in brief."""
    import ssl

    if not transcript.enabled or not isinstance(sock, ssl.SSLSocket):
        return
    from mailcli.tlsinfo import describe

    verified = sock.context.verify_mode != ssl.CERT_NONE
    info = describe(sock, verified=verified, verify_error=None if verified else "--insecure")
    for line in info.trace_lines():
        transcript.info(line)
