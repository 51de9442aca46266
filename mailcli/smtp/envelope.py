"""The values every sending path shares: the SMTP envelope, the outgoing message, and
the validation of addresses given on a command line.

A line break or NUL in a value from the command line or the config file would smuggle
in headers or SMTP commands (header injection): refused with exit 65, before anything
connects. "Line break" is every separator of str.splitlines, because Python's email
package folds and splits header values on all of them, not only on CR and LF.

An address list on the command line (`--to`, `--cc`, `--bcc`, `--reply-to`) may hold
RFC 5322 groups: `undisclosed-recipients:;` (empty: a valid header that names nobody)
or `team: a@example.org, b@example.org;`, whose members are recipients like any
other address; groups do not nest, and a sender (`--from`) is never a group.

SMTPUTF8 is needed only by a non-ASCII local part (`üser@...`). Every other address
goes as ASCII: a non-ASCII domain as its A-label (`smtp.idn`), in the envelope and in
a composed message's header, so the message needs nothing of the server. `prepared`
makes that choice for every sending path, before anything connects; a domain that does
not convert is 65 there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from mailcli.errors import DataError
from mailcli.smtp.idn import address_to_ascii, domain_to_ascii, local_part_is_ascii

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
# A group's display name: words (atoms, dots allowed as RFC 5322's obs-phrase does) or
# one quoted string.
_GROUP_NAME = r'[^\s"()<>\[\]:;@\\,]+(?:[ \t]+[^\s"()<>\[\]:;@\\,]+)*|"(?:[^"\\]|\\.)*"'
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


class AddressGroup(NamedTuple):
    """One entry of an address list: a named group (possibly empty), or with `name`
    None mailboxes that are in no group. Mailboxes are (display name, addr-spec)."""

    name: str | None
    mailboxes: tuple[tuple[str, str], ...]


def parse_address_list(what: str, values: Iterable[str]) -> list[AddressGroup]:
    """Repeatable, comma-separated address options, groups allowed (the module's
    docstring) -> the entries in order."""
    found: list[AddressGroup] = []
    for value in values:
        check_no_injection(what, value)
        if not value.strip():
            raise _unparsable(what, value)
        for name, members in _split_groups(what, value):
            found.append(AddressGroup(name, _mailboxes(what, value, members, name is not None)))
    return found


def parse_addresses(what: str, values: Iterable[str]) -> list[tuple[str, str]]:
    """Repeatable, comma-separated mailboxes (no group) -> [(display name, addr-spec)]."""
    entries = parse_address_list(what, values)
    if any(entry.name is not None for entry in entries):
        raise DataError(f"{what}: a group (name: ...;) cannot be used here")
    return [mailbox for entry in entries for mailbox in entry.mailboxes]


def group_members(entries: Iterable[AddressGroup]) -> list[str]:
    """Every addr-spec of the entries, group members included, in order."""
    return [address for entry in entries for _, address in entry.mailboxes]


def _unparsable(what: str, value: str) -> DataError:
    return DataError(f"{what}: cannot parse {value!r} as a list of addresses")


def _mailboxes(what: str, value: str, text: str, in_group: bool) -> tuple[tuple[str, str], ...]:
    from email.utils import getaddresses

    if not text.strip() and in_group:
        return ()  # the empty group
    pairs = getaddresses([text])
    if any(not re.fullmatch(_ADDR_SPEC, address) for _, address in pairs):
        raise _unparsable(what, value)
    return tuple(pairs)


def _split_groups(what: str, value: str) -> list[tuple[str | None, str]]:
    """`a@x, team: b@y;, c@z` -> [(None, "a@x,"), ("team", " b@y"), (None, ", c@z")]:
    the group syntax found where it counts (outside quotes, comments, angle brackets
    and domain literals); the text of mailboxes outside groups trimmed of the commas
    that separated them from a group."""
    segments: list[tuple[str | None, str]] = []
    start = item = 0  # where the current run of mailboxes and the current entry begin
    group: tuple[str, int] | None = None  # (name, where its members begin)
    for index, char in _delimiters(value):
        if char == ",":
            item = index + 1 if group is None else item  # a comma in a group separates members
        elif char == ":" and group is None:
            segments.append((None, value[start:item]))
            group = (_group_name(what, value, value[item:index]), index + 1)
        elif char == ";" and group is not None:
            segments.append((group[0], value[group[1] : index]))
            group, start, item = None, index + 1, index + 1
        else:  # a nested group, or a ';' that closes none
            raise _unparsable(what, value)
    if group is not None:
        raise DataError(f"{what}: the group in {value!r} does not end with ';'")
    segments.append((None, value[start:]))
    trimmed = [(name, text if name else text.strip(" \t,")) for name, text in segments]
    return [(name, text) for name, text in trimmed if name is not None or text]


def _group_name(what: str, value: str, text: str) -> str:
    name = text.strip()
    if not re.fullmatch(_GROUP_NAME, name):
        raise _unparsable(what, value)
    if name.startswith('"'):
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _delimiters(value: str) -> Iterator[tuple[int, str]]:
    """The positions of `,`, `:` and `;` that delimit list entries and groups."""
    comments = 0
    quoted = escaped = angle = literal = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comments):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif comments:
            comments += {"(": 1, ")": -1}.get(char, 0)
        elif char in '"(':
            quoted, comments = char == '"', int(char == "(")
        elif angle or literal:
            angle, literal = angle and char != ">", literal and char != "]"
        elif char in "<[":
            angle, literal = char == "<", char == "["
        elif char in ",:;":
            yield index, char


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
    """Only a non-ASCII local part does: a non-ASCII domain goes as its A-label."""
    return not all(local_part_is_ascii(address) for address in addresses)


def prepared(
    envelope: Envelope,
    data: bytes,
    *,
    header_addresses: Iterable[str] = (),
    attachments: tuple[Attachment, ...] = (),
) -> Outgoing:
    """The message as it is submitted: flagged SMTPUTF8 when a local part of the
    envelope or of `header_addresses` needs it, the envelope then as given; otherwise
    every domain of the envelope as its A-label. Every domain must convert (65)."""
    addresses = [envelope.sender, *envelope.recipients]
    ascii_forms = [address_to_ascii(address) for address in addresses]
    header_addresses = list(header_addresses)
    for address in header_addresses:  # checked, though UTF-8 fields keep them as given
        address_to_ascii(address)
    utf8 = needs_smtputf8([*addresses, *header_addresses])
    if not utf8:
        sender, *recipients = ascii_forms
        envelope = Envelope(sender, tuple(dict.fromkeys(recipients)))
    return Outgoing(envelope, data, smtputf8=utf8, attachments=attachments)


def date_now() -> str:
    from email.utils import format_datetime, localtime

    return format_datetime(localtime())


def new_message_id(sender: str) -> str:
    """<unique@domain-of-the-sender>, the domain in its ASCII (IDNA) form."""
    from email.utils import make_msgid

    domain = sender.rpartition("@")[2] or "localhost"
    try:
        domain = domain_to_ascii(domain)
    except UnicodeError:  # not a valid IDN: the ID only has to be unique, not routable
        domain = "localhost"
    return make_msgid(domain=domain)
