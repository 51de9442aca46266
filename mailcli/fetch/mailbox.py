"""What identifies a POP3 mailbox, for the fetch state, the Maildir keys and the mbox
journal: the account name, the user and the host, as mpop's UIDL file is per user at
host; never the port or the TLS mode. The host is canonical: lower case, no trailing
dot, no IPv6 brackets, an IP address in its normal form, and every loopback name and
address (localhost, localhost.localdomain, ip6-localhost, ip6-loopback, 127.0.0.0/8,
::1) is one host. So 110/STARTTLS, 995/TLS, `127.0.0.1` and `localhost` reach the same
state; a different account or user is a different mailbox.

`escape` writes a text (a UID, a part of the identity, a destination) as one token of
the state file: each byte outside 0x21-0x7E, and "%" and "#", as %XX (upper-case hex);
`unescape` accepts exactly the escapes. Version 1 names (`v1_state_name`: by host text
and port) are still recognised, for migration and old Maildir keys.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

TOKEN = rb"(?:[\x21\x22\x24\x26-\x7e]|%[0-9A-Fa-f]{2})+"  # all but "#" and "%", or %XX
_ESCAPED = re.compile(rb"%([0-9A-Fa-f]{2})")
_PLAIN = frozenset(range(0x21, 0x7F)) - {ord("%"), ord("#")}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def escape(text: str) -> str:
    """A text (a UID: str from the server's bytes by surrogateescape) as one token."""
    data = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in data)


def unescape(token: str) -> str:
    """The inverse of `escape`; ValueError for anything `escape` cannot have written."""
    data = token.encode("ascii")
    if not re.fullmatch(TOKEN, data):
        raise ValueError(f"not an escaped token: {token[:40]!r}")
    raw = _ESCAPED.sub(lambda m: bytes.fromhex(m.group(1).decode()), data)
    return raw.decode("utf-8", "surrogateescape")


def canonical_host(host: str) -> str:
    """The host as it identifies a mailbox (see the module docstring)."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return "localhost" if name in _LOOPBACK_NAMES else name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return "localhost" if address.is_loopback else address.compressed


def mailbox_identity(account: str | None, user: str | None, host: str) -> str:
    """What identifies a mailbox: `ACCOUNT USER HOST`, each escaped ("-" when absent),
    the host canonical. The fetch state, the Maildir keys (`fetch.destination.message_key`) and the
    mbox journal's owner all use it."""
    return Mailbox(account, user, host).identity


def v1_state_name(account: str | None, user: str | None, host: str, port: int) -> str:
    """The version 1 state name (by host text and port): migration, old Maildir keys."""
    return _sanitize(f"{account or '-'}_{user or '-'}@{host}_{port}")


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", text)


@dataclass(frozen=True)
class Mailbox:
    account: str | None
    user: str | None
    host: str

    @property
    def identity(self) -> str:
        parts = (self.account, self.user, canonical_host(self.host))
        return " ".join(_identity_part(part) for part in parts)

    @property
    def file_stem(self) -> str:
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:12]
        host = canonical_host(self.host)
        readable = _sanitize(f"{self.account or '-'}_{self.user or '-'}@{host}")
        return f"{readable[:80]}-{digest}"

    def v1_files(self, directory: Path) -> list[Path]:
        """The version 1 state files of this mailbox, whatever port or host spelling."""
        prefix = _sanitize(f"{self.account or '-'}_{self.user or '-'}@")
        wanted = canonical_host(self.host)
        found = []
        for path in sorted(directory.glob("*.uids")):
            match = re.fullmatch(r"(.+)_[0-9]+", path.stem[len(prefix) :])
            if path.stem.startswith(prefix) and match and wanted in _v1_hosts(match[1]):
                found.append(path)
        return found


def _identity_part(part: str | None) -> str:
    """Escaped; "-" when absent, so a literal "-" is written "%2D"."""
    if not part:
        return "-"
    return "%2D" if part == "-" else escape(part)


def _v1_hosts(sanitized: str) -> set[str]:
    """The canonical hosts a v1 name's host part may have come from (":" and brackets
    became "_" in it)."""
    hosts = {canonical_host(sanitized)}
    if "_" in sanitized:
        for inner in (sanitized, sanitized[1:-1]):
            hosts.add(canonical_host(inner.replace("_", ":")))
    return hosts
