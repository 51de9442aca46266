"""The Received line `fetch --received-header` (key `received_header`) puts before each
fetched message, as mpop does by default and getmail does: a trace of the hop from the
POP3 server to this machine (RFC 5321 4.4, RFC 5322 3.6.7), for a message that travels
on (an MDA that forwards it, a sieve rule) and for the reader who asks where it came from.

It is off by default: without it every destination receives the message byte-identical
to what the server sent (CRLF to LF aside), which is fetch's default promise. With it,
the line is the only difference, and every destination gets the same line.

    Received: from pop.example.org
    \tby laptop (mailcli, account work) with POP3 id 00000001a2b3c4d5;
    \tMon, 7 Dec 2026 10:27:38 +0000

The parts: the POP3 server's host name as configured (an IP address as a literal,
`[192.0.2.1]`, `[IPv6:2001:db8::1]`), this machine's host name, the account in a comment
(none without `-a` or a default account), the message's UID as an atom (a byte outside
letters, digits, `-` and `_` written as `=XX`; left out when there is no UIDL or when it
would take more than 100 characters), and the local time of the delivery. Every name is
reduced to characters that cannot end the field or break its grammar.

The line is written to the destination's writer before the message's first byte; it is
not part of what the server sent: the octets counted against LIST's size, the sizes in
the fetch state and the keys of Maildir names are the server's message alone.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time

_DOMAIN_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
_COMMENT_UNSAFE = re.compile(r"[^\x21-\x27\x2a-\x5b\x5d-\x7e]")  # printable, no ()\ or space
_ATOM_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MAX_ID = 100
MAX_NAME = 64


class ReceivedHeader:
    """The Received line of one run: `line(uid)` for each message, in CRLF (the writers
    take the message as the server sends it, and make LF of it)."""

    def __init__(self, server: str, account: str | None, *, local: str | None = None) -> None:
        self.server = _domain(server)
        self.local = _domain(local or socket.gethostname()) or "localhost"
        self.via = "mailcli" + (f", account {_comment(account)}" if account else "")

    def line(self, uid: str | None, when: float | None = None) -> bytes:
        """The field for the message with this UID (None: no UIDL), received `when`."""
        clause = f" id {atom}" if uid and len(atom := _atom(uid)) <= MAX_ID else ""
        return (
            f"Received: from {self.server}\r\n"
            f"\tby {self.local} ({self.via}) with POP3{clause};\r\n"
            f"\t{_date(time.time() if when is None else when)}\r\n"
        ).encode("ascii")


def _domain(host: str) -> str:
    """A host name as RFC 5321's Domain, an IP address as its address literal."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return _DOMAIN_UNSAFE.sub("-", host)[:255] or "unknown"
    return f"[IPv6:{address.compressed}]" if address.version == 6 else f"[{address}]"


def _comment(text: str) -> str:
    return _COMMENT_UNSAFE.sub("_", text)[:MAX_NAME]


def _atom(uid: str) -> str:
    """The UID's exact bytes (surrogateescape) as an atom: other bytes as `=XX`."""
    data = uid.encode("utf-8", "surrogateescape")
    return "".join(chr(byte) if byte in _ATOM_SAFE else f"={byte:02X}" for byte in data)


def _date(when: float) -> str:
    """RFC 5322 date-time in local time with its offset, in English whatever the locale."""
    from email.utils import formatdate

    return formatdate(when, localtime=True)
