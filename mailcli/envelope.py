"""The values every sending path shares: the SMTP envelope, the outgoing message, and
the validation of addresses given on a command line.

A CR, LF or NUL in a value from the command line would smuggle in headers or SMTP
commands (header injection): refused with exit 65, before anything connects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailcli.errors import DataError

# addr-spec, loosely: something@something, no white space or specials. Quoted local
# parts are rare enough on a command line that refusing them beats misparsing them.
_ADDR_SPEC = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+")


@dataclass(frozen=True)
class Envelope:
    """MAIL FROM and RCPT TO. An empty sender is the null sender `<>`."""

    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Outgoing:
    """What the transport submits: the envelope and the message bytes, CRLF, unstuffed."""

    envelope: Envelope
    data: bytes = field(repr=False)
    smtputf8: bool = False


def check_no_injection(what: str, value: str) -> None:
    """A CR, LF or NUL in a command-line value would smuggle in headers or commands."""
    if any(char in value for char in "\r\n\0"):
        raise DataError(f"{what} contains a line break or NUL: refused (header injection)")


def parse_addresses(what: str, values: Iterable[str]) -> list[tuple[str, str]]:
    """Repeatable, comma-separated address options -> [(display name, addr-spec)]."""
    from email.utils import getaddresses

    found: list[tuple[str, str]] = []
    for value in values:
        check_no_injection(what, value)
        pairs = getaddresses([value])
        if not value.strip() or any(not _ADDR_SPEC.fullmatch(addr) for _, addr in pairs):
            raise DataError(f"{what}: cannot parse {value!r} as a list of addresses")
        found.extend(pairs)
    return found


def parse_envelope_address(what: str, value: str) -> str:
    """A bare address for MAIL FROM/RCPT TO; `<>` or empty is the null sender."""
    check_no_injection(what, value)
    bare = value.strip()
    if bare in ("", "<>"):
        return ""
    bare = bare.removeprefix("<").removesuffix(">")
    if not _ADDR_SPEC.fullmatch(bare):
        raise DataError(f"{what}: {value!r} is not a bare address such as user@example.org")
    return bare


def split_commas(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def needs_smtputf8(addresses: Iterable[str]) -> bool:
    return any(not address.isascii() for address in addresses)


def date_now() -> str:
    from email.utils import format_datetime, localtime

    return format_datetime(localtime())


def new_message_id(sender: str) -> str:
    """<unique@domain-of-the-sender>, the domain in its ASCII (IDNA) form."""
    from email.utils import make_msgid

    domain = sender.rpartition("@")[2] or "localhost"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN: the ID only has to be unique, not routable
        domain = "localhost"
    return make_msgid(domain=domain)
