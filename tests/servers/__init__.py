"""Throwaway mail servers on 127.0.0.1 for tests, the demo and the benchmarks.

One launcher for everything that needs a real server: Dovecot (POP3), Postfix (SMTP,
delivering into Dovecot's Maildirs, authenticating against Dovecot), an in-process aiosmtpd
with fault injection, and a private gnome-keyring Secret Service. Each runs from a fresh
temp directory and never reads the system's configuration.

pytest fixtures are in ``tests.servers.fixtures``; ``python -m tests.servers`` starts all
servers for manual use and prints where they listen.
"""

from __future__ import annotations

import os

from .certs import Certs, make_certs
from .dovecot import MAIL_GID, MAIL_UID, Dovecot
from .keyring_service import SecretService
from .ports import HOST, free_port
from .postfix import DOMAIN, REFUSED_RECIPIENT, Postfix
from .procs import which
from .smtpd import AioSmtpd, Received
from .stack import DEFAULT_USERS, ServerStack, start_stack

__all__ = [
    "DEFAULT_USERS",
    "DOMAIN",
    "HOST",
    "MAIL_GID",
    "MAIL_UID",
    "NEEDS",
    "REFUSED_RECIPIENT",
    "AioSmtpd",
    "Certs",
    "Dovecot",
    "Postfix",
    "Received",
    "SecretService",
    "ServerStack",
    "free_port",
    "make_certs",
    "missing_reason",
    "require",
    "start_stack",
]

# The binaries each kind of server needs (Debian packages dovecot-core, dovecot-pop3d,
# postfix, dbus, dbus-bin, gnome-keyring).
NEEDS: dict[str, tuple[str, ...]] = {
    "dovecot": ("dovecot",),
    "postfix": ("postfix", "postmap"),
    "secret_service": ("dbus-daemon", "dbus-send", "gnome-keyring-daemon"),
}


def missing_reason(*binaries: str, need_root: bool = False) -> str | None:
    """Why these servers cannot run here (a missing binary, not root), or None if they can.

    Root is needed by Dovecot and Postfix: they switch to their system users and the mail
    must belong to uid 5000.
    """
    missing = [name for name in binaries if which(name) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    if need_root and os.geteuid() != 0:
        return "must run as root (Dovecot and Postfix drop privileges themselves)"
    return None


def require(*binaries: str, need_root: bool = False) -> None:
    """Skip the calling test when ``missing_reason`` says it cannot run; fail it under CI.

    On CI (``CI=true``) every server must be present: a skip there would hide a broken
    install step, so it is a failure instead.
    """
    skip_unless_ready(missing_reason(*binaries, need_root=need_root))


def skip_unless_ready(reason: str | None) -> None:
    """Skip the calling test for `reason` (None: it can run); fail it under CI."""
    if reason is None:
        return
    import pytest  # only here: the launcher itself must work without pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
    pytest.skip(reason)
