"""msmtp, mpop and getmail6, the tools `mailcli account import` reads, configured for
the test servers: their configuration files written the way their manuals show, and
runs of the real binaries (Debian's packages) against Postfix and Dovecot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


@contextmanager
def shared_maildir() -> Iterator[Path]:
    """A Maildir any user may write: getmail refuses to deliver as root and delivers as
    the destination's `user` (nobody) instead, who cannot reach pytest's private tmp."""
    top = Path(tempfile.mkdtemp(prefix="mailcli-getmail-", dir="/tmp"))
    try:
        maildir = make_maildir(top / "Maildir")
        for path in (top, maildir, *(maildir / sub for sub in ("cur", "new", "tmp"))):
            path.chmod(0o777)
        yield maildir
    finally:
        shutil.rmtree(top, ignore_errors=True)
