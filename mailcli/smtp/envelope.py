"""The values every sending path shares: the SMTP envelope, the outgoing message, and
the validation of addresses given on a command line.

A line break or NUL in a value from the command line or the config file would smuggle
in headers or SMTP commands (header injection): refused with exit 65, before anything
connects. "Line break" is every separator of str.splitlines, because Python's email
package folds and splits header values on all of them, not only on CR and LF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from mailcli.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    from mailcli.smtp.dsn import DsnRequest

# addr-spec, loosely: something@something, no white space or specials. Quoted local
# parts are rare enough on a command line that refusing them beats misparsing them.
_ENCODE_BLOCK = 57 * 4096  # whole base64 lines: 57 bytes encode to one 76-character line
# Patterns, not compiled: re compiles (and caches) them on first use, so importing this
# module costs no regex compilation (start-up).
_ADDR_SPEC = r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+"
# str.splitlines' separators (CR, LF, VT, FF, FS, GS, RS, NEL, LS, PS) and NUL.
_LINE_BREAKS_AND_NUL = "[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029\0]"
# The blind-copy fields: their addresses are recipients, the fields are never transmitted.
BLIND_FIELDS = frozenset({"bcc", "resent-bcc"})


# The records of a send are NamedTuples, not frozen dataclasses: immutable all the same,
# and building a dataclass at import costs ~0.8-1 ms each (its methods exec'd; start-up).
class Envelope(NamedTuple):
    """MAIL FROM and RCPT TO. An empty sender is the null sender `<>`."""

    sender: str
    recipients: tuple[str, ...]


class Attachment(NamedTuple):
    """A file that is base64-encoded while the message is transmitted, so that a large
    attachment never sits in memory whole: `marker` (a line of `Outgoing.data`, CRLF
    included) stands for its encoded lines. A NamedTuple: no dataclass is built at
    import for the sends that attach nothing (start-up)."""

    marker: bytes
    path: Path
    size: int

    @property
    def encoded_size(self) -> int:
        characters = 4 * ((self.size + 2) // 3)
        return characters + 2 * ((characters + 75) // 76)  # 76 per line, each + CRLF

    def encoded_chunks(self) -> Iterator[bytes]:
        """base64 lines of 76 characters, CRLF-terminated, ~300 KiB at a time."""
        import base64

        with open(self.path, "rb") as handle:
            while block := handle.read(_ENCODE_BLOCK):
                yield base64.encodebytes(block).replace(b"\n", b"\r\n")


class Outgoing(NamedTuple):
    """What the transport submits: the envelope and the message bytes, CRLF, unstuffed.

    `data` is the whole message unless `attachments` are given: then each attachment's
    marker line in `data` is replaced by the file's encoding as the bytes are produced.
    """

    envelope: Envelope
    data: bytes
    smtputf8: bool = False
    attachments: tuple[Attachment, ...] = ()
    dsn: DsnRequest | None = None  # RFC 3461 notifications asked for (smtp.dsn)

    def __repr__(self) -> str:  # the message bytes are left out, as they may be large
        return (
            f"Outgoing(envelope={self.envelope!r}, smtputf8={self.smtputf8!r}, "
            f"attachments={self.attachments!r}, dsn={self.dsn!r})"
        )

    @property
    def size(self) -> int:
        return len(self.data) + sum(a.encoded_size - len(a.marker) for a in self.attachments)

    def chunks(self) -> Iterator[bytes]:
        """The message in pieces; every piece begins and ends at a line boundary."""
        rest = self.data
        for attachment in self.attachments:
            before, _, rest = rest.partition(attachment.marker)
            yield before
            yield from attachment.encoded_chunks()
        yield rest


def check_no_injection(what: str, value: str) -> None:
    """A line break (any of str.splitlines') or NUL would smuggle in headers or commands."""
    if re.search(_LINE_BREAKS_AND_NUL, value):
        raise DataError(f"{what} contains a line break or NUL: refused (header injection)")


def parse_addresses(what: str, values: Iterable[str]) -> list[tuple[str, str]]:
    """Repeatable, comma-separated address options -> [(display name, addr-spec)]."""
    from email.utils import getaddresses

    found: list[tuple[str, str]] = []
    for value in values:
        check_no_injection(what, value)
        pairs = getaddresses([value])
        if not value.strip() or any(not re.fullmatch(_ADDR_SPEC, addr) for _, addr in pairs):
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
    if not re.fullmatch(_ADDR_SPEC, bare):
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
