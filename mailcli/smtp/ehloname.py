"""The name mailcli gives in EHLO (and HELO): the one place that decides it.

Given (`--ehlo`, the account's `ehlo` key, checked by `endpoint.ehlo_problem` when the
endpoint is resolved): that name. Otherwise the host's fully qualified name when it has
a dot (relays with Postfix's `reject_non_fqdn_helo_hostname` refuse a bare `vm`), else
the account's `domain`, else `localhost`. The choice comes with its reason, for
`--trace` and `check`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from mailcli.endpoint import ehlo_problem
from mailcli.errors import UsageError


class EhloName(NamedTuple):
    """The name EHLO gives, and why that one (shown by `--trace` and `check`)."""

    name: str
    reason: str


def choose_ehlo_name(
    given: str | None, domain: str | None, host_fqdn: Callable[[], str]
) -> EhloName:
    """The given name; else the host's FQDN when it has a dot; else the account's
    domain; else `localhost`. `host_fqdn` is asked only when nothing is given (it may
    wait on DNS)."""
    if given is not None:
        problem = ehlo_problem(given)
        if problem is not None:  # resolve_endpoint refuses these first; an Endpoint by hand
            raise UsageError(f"{given!r} cannot be an EHLO name: {problem}")
        return EhloName(given, "given by --ehlo or `ehlo`")
    fqdn = host_fqdn()
    if "." in fqdn and ehlo_problem(fqdn) is None:
        return EhloName(fqdn, "the host's FQDN")
    if domain and ehlo_problem(domain) is None:
        return EhloName(domain, f"the account's domain; the host's name {fqdn!r} has no dot")
    return EhloName("localhost", f"no FQDN (the host's name {fqdn!r} has no dot) nor domain")
