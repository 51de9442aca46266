"""msmtp and mpop, the tools `mailcli account import` reads, configured for the test
servers: their configuration files written the way their manuals show, and runs of the
real binaries (Debian's msmtp and mpop) against Postfix and Dovecot."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from .accounts import Account


def tls_lines(account: Account) -> str:
    """The TLS commands msmtp and mpop share, for an account's security mode."""
    if account.security == "none":
        return "tls off\n"
    starttls = "off" if account.security == "tls" else "on"
    return f"tls on\ntls_starttls {starttls}\ntls_trust_file {account.cafile}\n"


def server_lines(account: Account) -> str:
    login = f"auth on\nuser {account.user}\n" if account.user else "auth off\n"
    return f"host {account.host}\nport {account.port}\n{tls_lines(account)}{login}"


def write_rc(path: Path, text: str) -> Path:
    """A configuration file only its owner may read (msmtp and mpop refuse others when
    it holds a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def make_maildir(path: Path) -> Path:
    """mpop delivers only into an existing Maildir."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def run_tool(argv: list[str], env: Mapping[str, str], stdin: bytes = b"") -> str:
    """Run msmtp or mpop, which must succeed; its output (stdout and stderr)."""
    done = subprocess.run(
        argv, input=stdin, env=dict(env), capture_output=True, timeout=60, check=False
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"{argv[0]} failed ({done.returncode}): {output}"
    return output
