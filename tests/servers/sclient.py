"""`openssl s_client`: the tests' independent check of what the audit says about a
server's TLS (which versions and suites complete a handshake), with no mailcli code in
the way."""

from __future__ import annotations

import subprocess

from .ports import HOST


def s_client(port: int, *options: str) -> str:
    """What `openssl s_client` to the loopback `port` with `options` printed when its
    handshake completed (e.g. "New, TLSv1.2, Cipher is ..."), else ""."""
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"{HOST}:{port}", *options],
        input=b"QUIT\r\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.stdout.decode(errors="replace") if done.returncode == 0 else ""


def starttls_handshakes(port: int, version: str, ciphers: str) -> bool:
    """Whether an SMTP STARTTLS handshake completes with this protocol version option
    (e.g. -tls1) and cipher list."""
    return "Cipher is" in s_client(port, "-starttls", "smtp", version, "-cipher", ciphers)
