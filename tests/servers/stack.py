"""All real servers at once, for the demo, the benchmarks and ``python -m tests.servers``.

Tests use the pytest fixtures instead (fixtures.py), which start each server only when a
test asks for it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .certs import Certs, make_certs
from .dovecot import Dovecot
from .keyring_service import SecretService
from .postfix import Postfix
from .procs import make_workdir

# The logins every instance starts with (tests add more with Dovecot.add_user).
DEFAULT_USERS: dict[str, str] = {"alice": "alice-pw", "bob": "bob-pw"}


@dataclass(frozen=True)
class ServerStack:
    """The running servers; ``secret_service`` is None when it was not wanted."""

    certs: Certs
    dovecot: Dovecot
    postfix: Postfix
    secret_service: SecretService | None

    def describe(self) -> dict[str, Any]:
        """Everything a client needs to connect, as JSON-ready data."""
        return {
            "host": self.dovecot.host,
            "ca_pem": str(self.certs.ca_pem),
            "domain": self.postfix.domain,
            "users": self.dovecot.users,
            "refused_recipient": self.postfix.refused_recipient,
            "pop3_port": self.dovecot.pop3_port,
            "pop3s_port": self.dovecot.pop3s_port,
            "smtp_port": self.postfix.smtp_port,
            "submission_port": self.postfix.submission_port,
            "smtps_port": self.postfix.smtps_port,
            "mail_root": str(self.dovecot.mail_root),
            "keyring_env": self.secret_service.env if self.secret_service else None,
        }


@contextlib.contextmanager
def start_stack(
    users: dict[str, str] | None = None, *, secret_service: bool = True
) -> Iterator[ServerStack]:
    """Start Dovecot, Postfix and (optionally) a Secret Service; stop and clean up on exit."""
    cert_dir = make_workdir("certs-")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, cert_dir, ignore_errors=True)
        certs = make_certs(cert_dir)
        dovecot = stack.enter_context(Dovecot(certs, users or DEFAULT_USERS))
        postfix = stack.enter_context(Postfix(dovecot))
        keyring = stack.enter_context(SecretService()) if secret_service else None
        yield ServerStack(certs, dovecot, postfix, keyring)
