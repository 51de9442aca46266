"""International domain names: a domain with non-ASCII characters as its A-label
(`bücher.example` -> `xn--bcher-kva.example`), which every SMTP server takes.

The conversion is IDNA 2008 with the UTS 46 mapping, non-transitional (the `idna`
package; libidn2 and browsers do the same): upper case is folded (`BÜCHER` ->
`bücher`), full-width and ideographic full stops separate labels, and ß, ς, ZWJ and
ZWNJ are kept as themselves (`straße` -> `xn--strae-oqa`, not `strasse` as IDNA 2003
made it: that is another domain). Then IDNA 2008's rules hold for the whole name: no
empty label, at most 63 octets a label and 253 the name, only code points the
standard permits (no symbols or emoji, no `_`), and the Bidi rule (one label mixing
right-to-left and left-to-right letters is refused). Scripts mixed the way IDNA 2008
permits (a Cyrillic a, U+0430, among Latin letters) convert: the A-label is not the
look-alike's, so the mail cannot reach the look-alike; whether to trust such a name
is for the reader's program to show.

A name that does not convert is a `DataError` (65) naming the address and the
reason. ASCII domains are left exactly as given, and `idna` is imported only when a
domain is not ASCII (start-up).
"""

from __future__ import annotations

from mailcli.errors import DataError


def domain_to_ascii(domain: str) -> str:
    """The A-label form of `domain`; an ASCII domain unchanged. Raises UnicodeError
    (idna.IDNAError is one) when it does not convert."""
    if domain.isascii():
        return domain
    import idna

    return idna.encode(domain, uts46=True, transitional=False).decode("ascii")


def address_to_ascii(address: str) -> str:
    """`local@domain` with the domain as its A-label; the local part as given (only
    SMTPUTF8 carries a non-ASCII one). 65 when the domain does not convert."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain_to_ascii(domain)}"
    except UnicodeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"address {address!r}: the domain is not a valid international domain name "
            f"(IDNA 2008): {reason}"
        ) from None


def local_part_is_ascii(address: str) -> bool:
    """True when the part before the last `@` (the whole address without one) is ASCII:
    then the address needs no SMTPUTF8, its domain going as an A-label."""
    local, at, _ = address.rpartition("@")
    return (local if at else address).isascii()
