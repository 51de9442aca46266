"""Whether a server asks for a TLS client certificate, and which CAs it says it accepts.

Python's ssl module does not expose the server's CertificateRequest, so `check` asks
`openssl s_client` (one more connection to the same host and port, with STARTTLS/STLS
when the check used it), and only when the binary is installed; otherwise, through a
SOCKS proxy (s_client cannot use one) or without TLS, the answer is "unknown" with the
reason. s_client prints "Acceptable client certificate CA names" followed by the names,
and "Requested Signature Algorithms" only after a CertificateRequest: either means the
server asked. It runs with the environment children get (no secrets), its input closed
(it ends after the handshake), within the endpoint's timeout.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from mailcli.auth.childenv import child_environment
from mailcli.endpoint import Endpoint

_CA_NAMES = "Acceptable client certificate CA names"
_REQUESTED = "Requested Signature Algorithms"
_STARTTLS = {"smtp": "smtp", "pop3": "pop3"}


@dataclass
class ClientCertificateRequest:
    """`requested` None: unknown (`detail` says why); else whether the server asked,
    and the CA names it sent (possibly none: any certificate it can verify)."""

    requested: bool | None
    ca_names: list[str] = field(default_factory=list)
    detail: str = ""

    def summary(self) -> str:
        if self.requested is None:
            return f"unknown: {self.detail}"
        if not self.requested:
            return "not asked for"
        names = "; ".join(self.ca_names) or "no CA names sent"
        return f"asked for (acceptable CAs: {names})"


def probe_client_certificate_request(endpoint: Endpoint) -> ClientCertificateRequest:
    """Ask `openssl s_client` what the server's handshake requested (module docstring)."""
    if endpoint.security == "none":
        return ClientCertificateRequest(None, detail="no TLS")
    if endpoint.proxy:
        return ClientCertificateRequest(None, detail="openssl s_client cannot use the proxy")
    binary = shutil.which("openssl")
    if binary is None:
        return ClientCertificateRequest(None, detail="openssl is not installed")
    args = [binary, "s_client", "-connect", endpoint.where]
    if endpoint.security == "starttls":
        args += ["-starttls", _STARTTLS[endpoint.protocol]]
    if endpoint.family is not None:
        args.append("-4" if endpoint.family == "ipv4" else "-6")
    try:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=endpoint.timeout,
            env=child_environment(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ClientCertificateRequest(None, detail=f"openssl s_client failed: {exc}")
    return parse_s_client(done.stdout.decode("utf-8", "replace"))


def parse_s_client(output: str) -> ClientCertificateRequest:
    """s_client's report of one handshake, read for the CertificateRequest."""
    lines = output.splitlines()
    if "Server certificate" not in lines and not any("Cipher is" in line for line in lines):
        return ClientCertificateRequest(None, detail="openssl s_client did not complete TLS")
    names: list[str] = []
    if _CA_NAMES in lines:
        for line in lines[lines.index(_CA_NAMES) + 1 :]:
            if not line or line.startswith(("---", _REQUESTED, "Shared ", "Client Certificate")):
                break
            names.append(line.strip())
    requested = bool(names) or any(line.startswith(_REQUESTED) for line in lines)
    return ClientCertificateRequest(requested, names, "openssl s_client")
