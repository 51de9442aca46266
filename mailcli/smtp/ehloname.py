"""The name mailcli gives in EHLO (and HELO): the one place that decides it.

Given (`--ehlo`, the account's `ehlo` key): that name, once it is valid. Otherwise the
host's fully qualified name when it has a dot (relays with Postfix's
`reject_non_fqdn_helo_hostname` refuse a bare `vm`), else the account's `domain`, else
`localhost`. The choice comes with its reason, for `--trace` and `check`.

Valid, per RFC 5321 4.1.2 (`Domain / address-literal`): dot-separated labels of ASCII
letters, digits, hyphens (and underscores, which real host names carry and servers
accept), none empty or over 63 characters, at most 255 in all; or an address literal,
`[192.0.2.1]` or `[IPv6:2001:db8::1]`. Spaces, control bytes and non-ASCII would break
the command line or be refused: `ehlo_problem` says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from mailcli.errors import UsageError

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"


class EhloName(NamedTuple):
    """The name EHLO gives, and why that one (shown by `--trace` and `check`)."""

    name: str
    reason: str


def ehlo_problem(name: str) -> str | None:
    """Why `name` cannot be given in EHLO, or None when it can."""
    if not name:
        return "it is empty"
    if not name.isascii():
        return "it is not ASCII (give the domain's A-label, xn--...)"
    if not name.isprintable():
        return "it contains a control character"
    if " " in name:
        return "it contains a space"
    if name.startswith("["):
        return _literal_problem(name)
    if len(name) > 255 or not re.fullmatch(_DOMAIN, name):
        return "it is not a domain name (labels of letters, digits and hyphens) nor [address]"
    return None


def _literal_problem(name: str) -> str | None:
    import ipaddress

    inside = name[1:-1] if name.endswith("]") else ""
    try:
        if inside[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inside[5:])
        else:
            ipaddress.IPv4Address(inside)
    except ValueError:
        return "it is not an address literal such as [192.0.2.1] or [IPv6:2001:db8::1]"
    return None


def checked_ehlo_name(name: str, source: str) -> str:
    """`name` when valid; else a usage error (64) naming `source` and why."""
    problem = ehlo_problem(name)
    if problem is not None:
        raise UsageError(f"{source} {name!r} cannot be an EHLO name: {problem}")
    return name


def choose_ehlo_name(
    given: str | None, domain: str | None, host_fqdn: Callable[[], str]
) -> EhloName:
    """The given name; else the host's FQDN when it has a dot; else the account's
    domain; else `localhost`. `host_fqdn` is asked only when nothing is given (it may
    wait on DNS)."""
    if given is not None:
        return EhloName(checked_ehlo_name(given, "the EHLO name"), "given by --ehlo or `ehlo`")
    fqdn = host_fqdn()
    if "." in fqdn and ehlo_problem(fqdn) is None:
        return EhloName(fqdn, "the host's FQDN")
    if domain and ehlo_problem(domain) is None:
        return EhloName(domain, f"the account's domain; the host's name {fqdn!r} has no dot")
    return EhloName("localhost", f"no FQDN (the host's name {fqdn!r} has no dot) nor domain")
