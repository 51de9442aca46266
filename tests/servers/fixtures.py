"""pytest fixtures for the throwaway servers; ``tests/conftest.py`` star-imports this module.

Real daemons are session-scoped (Dovecot and Postfix start in about half a second, but
once is enough); a test that needs an empty mailbox takes the ``mailbox`` fixture, which
adds a fresh user instead of restarting anything. Each fixture skips its test when the
server cannot run here, and fails it instead under ``CI=true`` (see ``require``).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import NEEDS, require, skip_unless_ready
from .accounts import Account
from .authserver import AuthServer
from .certs import Certs, make_certs
from .dovecot import Dovecot
from .keyring_service import SecretService
from .postfix import DOMAIN, Postfix
from .procs import make_workdir
from .smtpd import AioSmtpd
from .stack import DEFAULT_USERS

if TYPE_CHECKING:
    from .dualstack import Microsocks
    from .hygiene import Setup

__all__ = [
    "Mailbox",
    "aiosmtpd_factory",
    "auth_server",
    "certs",
    "dovecot",
    "dovecot6",
    "hardened_dovecot",
    "hygiene",
    "hygiene_proxy",
    "mailbox",
    "make_mailbox",
    "oauth_dovecot",
    "oauth_postfix",
    "pop3_account",
    "postfix",
    "scram_dovecot",
    "scram_postfix",
    "secret_service",
    "smtp_account",
    "untrusted_certs",
]

_mailbox_numbers = itertools.count(1)


@dataclass(frozen=True)
class Mailbox:
    """A user created for one test: log in with ``user``/``password``, mail ``address``."""

    user: str
    password: str
    address: str
    maildir: Path
    server: Dovecot | None = field(default=None, compare=False, repr=False)

    def drop(self, *messages: bytes) -> None:
        """Put ``messages`` into this mailbox as an MTA would (see ``Dovecot.drop_message``)."""
        assert self.server is not None, "a Mailbox made by make_mailbox() or the fixture"
        for data in messages:
            self.server.drop_message(self.user, data)


def make_mailbox(dovecot: Dovecot, prefix: str = "u") -> Mailbox:
    """Add a new Dovecot user with an empty mailbox (names are unique in this process)."""
    user = f"{prefix}{next(_mailbox_numbers)}"
    password = f"{user}-pw"
    dovecot.add_user(user, password)
    return Mailbox(user, password, f"{user}@{DOMAIN}", dovecot.maildir(user), dovecot)


@pytest.fixture(scope="session")
def certs() -> Iterator[Certs]:
    """The CA every test server's certificate chains to (``certs.ca_pem``)."""
    # Not tmp_path: the daemons' unprivileged users must be able to traverse the directory.
    directory = make_workdir("certs-")
    yield make_certs(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def untrusted_certs(certs: Certs) -> Certs:
    """A leaf from an unrelated CA, for "untrusted certificate" tests (e.g. with aiosmtpd)."""
    return make_certs(certs.ca_pem.parent, "untrusted")


@pytest.fixture(scope="session")
def dovecot(certs: Certs) -> Iterator[Dovecot]:
    """Dovecot POP3 with users alice/alice-pw and bob/bob-pw (see DEFAULT_USERS).

    Shared by the whole session: tests that count or delete messages should use ``mailbox``.
    """
    require(*NEEDS["dovecot"], need_root=True)
    with Dovecot(certs, DEFAULT_USERS) as server:
        yield server


@pytest.fixture(scope="session")
def postfix(dovecot: Dovecot) -> Iterator[Postfix]:
    """Postfix delivering ``USER@example.test`` into ``dovecot``'s Maildirs."""
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(dovecot) as server:
        yield server


# What the audit's tests change from the test Dovecot: no cleartext logins (from a
# client other than the server's own address), no APOP, the 2 s failure delay back
# (failure_delay=True drops the nodelay passdb), TLS 1.2+ with AEAD suites only.
HARDENED_DOVECOT = """
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 2 secs
ssl_min_protocol = TLSv1.2
ssl_cipher_list = ECDHE+AESGCM:ECDHE+CHACHA20
"""


@pytest.fixture(scope="module")
def hardened_dovecot(certs: Certs) -> Iterator[Dovecot]:
    """Dovecot configured to pass the POP3 audit (``HARDENED_DOVECOT``)."""
    require(*NEEDS["dovecot"], need_root=True)
    with Dovecot(
        certs, DEFAULT_USERS, extra_settings=HARDENED_DOVECOT, failure_delay=True
    ) as server:
        yield server


@pytest.fixture(scope="session")
def oauth_dovecot(certs: Certs) -> Iterator[Dovecot]:
    """Dovecot that also takes OAuth2 bearer tokens (XOAUTH2, OAUTHBEARER): HS256 JWTs
    signed with ``oauth_dovecot.oauth2_key`` (``jwt.mint(key, USER, lifetime=...)``)."""
    from . import jwt

    require(*NEEDS["dovecot"], need_root=True)
    with Dovecot(certs, DEFAULT_USERS, oauth2_key=jwt.new_key()) as server:
        yield server


@pytest.fixture(scope="session")
def oauth_postfix(oauth_dovecot: Dovecot) -> Iterator[Postfix]:
    """Postfix authenticating through ``oauth_dovecot``: offers XOAUTH2 and OAUTHBEARER."""
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(oauth_dovecot) as server:
        yield server


@pytest.fixture(scope="session")
def scram_dovecot(certs: Certs) -> Iterator[Dovecot]:
    """Dovecot that also offers SCRAM-SHA-1 and SCRAM-SHA-256 (see ``scram``)."""
    from .scram import SCRAM_SETTINGS

    require(*NEEDS["dovecot"], need_root=True)
    with Dovecot(certs, DEFAULT_USERS, extra_settings=SCRAM_SETTINGS) as server:
        yield server


@pytest.fixture(scope="session")
def scram_postfix(scram_dovecot: Dovecot) -> Iterator[Postfix]:
    """Postfix authenticating through ``scram_dovecot``: offers the SCRAM mechanisms."""
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(scram_dovecot) as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A new, empty mailbox for this test only (also reachable through Postfix, if running)."""
    return make_mailbox(dovecot)


def _marker_options(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    return {} if marker is None else dict(marker.kwargs)


@pytest.fixture
def pop3_account(request: pytest.FixtureRequest, dovecot: Dovecot, mailbox: Mailbox) -> Account:
    """``mailbox`` on Dovecot with its CA; ``@pytest.mark.pop3_account(security="tls")``
    (or ``"starttls"``, ``"none"``) chooses the port and mode, else mailcli's default."""
    options = _marker_options(request, "pop3_account")
    return Account.pop3(dovecot, mailbox.user, mailbox.password, **options)


@pytest.fixture
def smtp_account(request: pytest.FixtureRequest, postfix: Postfix, mailbox: Mailbox) -> Account:
    """``mailbox`` submitting through Postfix (STARTTLS on the submission port unless
    ``@pytest.mark.smtp_account(security="tls")`` or ``"none"`` says otherwise)."""
    options = _marker_options(request, "smtp_account")
    return Account.submission(postfix, mailbox.user, mailbox.password, **options)


@pytest.fixture
def aiosmtpd_factory() -> Iterator[Callable[..., AioSmtpd]]:
    """Make started ``AioSmtpd`` servers (keyword arguments as its constructor); all are
    stopped after the test.
    """
    servers: list[AioSmtpd] = []

    def make(**options: Any) -> AioSmtpd:
        server = AioSmtpd(**options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def secret_service() -> Iterator[SecretService]:
    """An unlocked gnome-keyring Secret Service on a private bus; see ``SecretService.env``."""
    require(*NEEDS["secret_service"])
    with SecretService() as service:
        yield service


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    """A fresh OAuth2 authorization server on 127.0.0.1 (a thread; starts in ~1 ms);
    see ``tests.servers.authserver`` for its endpoints and knobs."""
    server = AuthServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dovecot6(certs: Certs) -> Iterator[Dovecot]:
    """Dovecot whose POP3 ports listen on 127.0.0.1 and ::1 (one per test module)."""
    from .dualstack import dual_stack_dovecot, ipv6_loopback_missing

    require(*NEEDS["dovecot"], need_root=True)
    skip_unless_ready(ipv6_loopback_missing())
    with dual_stack_dovecot(certs) as server:
        yield server


@pytest.fixture(scope="module")
def hygiene_proxy() -> Iterator[Microsocks]:
    """microsocks wanting the secret scans' proxy login (``hygiene.PROXY_PASSWORD``)."""
    from .dualstack import Microsocks, require_microsocks
    from .hygiene import PROXY_PASSWORD, PROXY_USER

    require_microsocks()
    with Microsocks(PROXY_USER, PROXY_PASSWORD) as server:
        yield server


@pytest.fixture
def hygiene(tmp_path: Path, mailbox: Mailbox) -> Iterator[Setup]:
    """The secret scans' account for ``mailbox`` (``hygiene.Setup``), in ``tmp_path``."""
    from .hygiene import make_setup

    with make_setup(tmp_path, mailbox) as made:
        yield made
