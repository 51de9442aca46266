"""Throwaway TLS certificates for the test servers.

Every server here (Dovecot, Postfix, aiosmtpd) presents a leaf signed by a CA made on the
spot, so TLS is verified for real: a client that trusts ``ca_pem`` gets a clean handshake,
one that does not gets the same "unknown CA" failure it would get in the wild.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

# The names the servers are reached by; IP SANs matter because tests connect to 127.0.0.1.
DEFAULT_IDENTITIES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Certs:
    """Paths of one CA and the leaf it issued (PEM files, readable by the server daemons)."""

    ca_pem: Path
    cert_pem: Path  # the leaf followed by its chain (here just the leaf: the CA signs directly)
    key_pem: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (hostname checking on)."""
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting this leaf, for in-process servers such as aiosmtpd."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_pem), str(self.key_pem))
        return context


def make_certs(
    directory: Path,
    name: str = "test",
    *,
    identities: tuple[str, ...] = DEFAULT_IDENTITIES,
    expired: bool = False,
) -> Certs:
    """Make a fresh CA and a leaf for ``identities``, written as ``NAME-{ca,cert,key}.pem``.

    Each call makes a new, unrelated CA, so ``make_certs(d, "untrusted")`` gives a chain that
    a client trusting the first CA rejects. ``identities`` lets a test make a leaf for the
    wrong host name, and ``expired`` one whose validity ended yesterday.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    not_before, not_after = _validity(expired)
    leaf = ca.issue_cert(*identities, not_before=not_before, not_after=not_after)
    paths = Certs(
        ca_pem=directory / f"{name}-ca.pem",
        cert_pem=directory / f"{name}-cert.pem",
        key_pem=directory / f"{name}-key.pem",
    )
    ca.cert_pem.write_to_path(str(paths.ca_pem))
    paths.cert_pem.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(paths.key_pem))
    # Daemons read the key as root before dropping privileges; nobody else needs it.
    paths.key_pem.chmod(0o600)
    return paths


def _validity(expired: bool) -> tuple[dt.datetime | None, dt.datetime | None]:
    """trustme's default validity (None, None), or a window that closed a day ago."""
    if not expired:
        return None, None
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(days=30), now - dt.timedelta(days=1)
