"""The envelope sender of a fetched message: what its `Return-Path` header says.

POP3 hands over a message without its envelope; the last MTA wrote the envelope sender
into the message as `Return-Path: <addr>` (RFC 5321 4.4), the null sender as `<>`. This
module is the one reader of it, for every place that needs it: the mbox `From ` line,
the MDA's `%F` and `SENDER`, LMTP's MAIL FROM.

The contract:
- Only the header section is read (up to the first empty line, at most `HEADER_LIMIT`
  bytes); the first `Return-Path` field counts (the topmost is the final delivery's),
  folded lines unfolded, `<addr>` taken from within angle brackets (a source route
  `@a,@b:` dropped), a bare `addr` without them taken as it is.
- The address is made inert, as mpop does for its `%F`: every byte outside letters,
  digits and `.@_-+/` becomes `_` (NUL, CR, LF, quotes, spaces, `$`, `;`, non-ASCII and
  undecodable bytes included), and a leading `-` becomes `_` so that it can never be
  read as a command-line option. The result is one shell word that needs no quoting (it
  is safe inside '...' too) and one word of an mbox `From ` line. Real addresses with
  other characters (a quoted local part, UTF-8) come out altered: a shell command and an
  mbox separator line are worth more than their exactness.
- No `Return-Path`, the null sender, an empty or unterminated `<`, or more than 254
  characters (RFC 5321's limit on a path: no address is that long): the sender is
  unknown, and `envelope_sender` says `MAILER-DAEMON`, as mbox and mpop do.
- One parser, two renderings. `return_path` and `envelope_sender` give the inert word
  above. `mail_from_address` gives the address for an SMTP/LMTP `MAIL FROM:<...>` as the
  message carries it (a forwarder's SRS `SRS0=HHH=TT=example.org=alice@fwd.example` or
  a list's VERP `list-bounces+alice=example.org@lists.example` included): a line on a
  socket needs no shell safety, and the server writes this address into the stored
  mail's Return-Path, where replies and bounces go. It is passed only when it is a valid
  RFC 5321 path, else the null sender is used instead (see the function).
"""

from __future__ import annotations

import re

UNKNOWN_SENDER = "MAILER-DAEMON"
HEADER_LIMIT = 64 * 1024  # a header section longer than this is read only this far
MAX_ADDRESS = 254

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@_-+/")
_INERT = bytes(byte if byte in _SAFE else ord("_") for byte in range(256))
_HEADER_END = re.compile(rb"(?:^|(?<=\n))\r?\n")  # the empty line, after its LF
_FIELD_NAME = re.compile(rb"return-path[ \t]*:", re.IGNORECASE)

# RFC 5321 4.1.2 Mailbox: (Dot-string / Quoted-string) "@" (Domain / address-literal),
# first held to printable ASCII without space, "<" or ">" (no CR, LF or NUL either).
_PATH_CHARACTERS = re.compile(rb"[\x21-\x3b\x3d\x3f-\x7e]+")
_ATOM = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_STRING = _ATOM + rb"(?:\." + _ATOM + rb")*"
_QUOTED_STRING = rb'"(?:[^"\\]|\\.)+"'
_LABEL = rb"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = _LABEL + rb"(?:\." + _LABEL + rb")*"
_ADDRESS_LITERAL = rb"\[[^][\\]+\]"
_MAILBOX = re.compile(
    rb"(?:%s|%s)@(?:%s|%s)" % (_DOT_STRING, _QUOTED_STRING, _DOMAIN, _ADDRESS_LITERAL)
)


def envelope_sender(header: bytes) -> str:
    """The sender for an mbox `From ` line, `%F` and `SENDER`: the message's
    `return_path`, or `MAILER-DAEMON` when there is none or it is the null sender."""
    return return_path(header) or UNKNOWN_SENDER


def return_path(header: bytes) -> str | None:
    """The first Return-Path's address, made inert (see the module docstring); "" for
    the null sender `<>`; None without a Return-Path or when it holds no address."""
    address = _return_path_address(header)
    if address is None:
        return None
    inert = address.translate(_INERT).decode("ascii")
    return "_" + inert[1:] if inert.startswith("-") else inert


def mail_from_address(header: bytes) -> str:
    """The first Return-Path's address unchanged, for `MAIL FROM:<...>`, when it is a
    valid RFC 5321 path: printable ASCII without space, `<` or `>`, at most 254
    characters, a local part `@` a domain or an address literal. A quoted local part
    (`"a..b"@x`) passes when it holds no space: it is valid and servers take it. Else ""
    for the null sender `<>`: every server takes it (bounces are sent with it, RFC 5321
    4.5.5), and it only means that no bounce goes back. A sanitised address would be
    someone else's, where replies and bounces would go; an invalid one would be
    refused with the message, run after run."""
    address = _return_path_address(header)
    if address and _PATH_CHARACTERS.fullmatch(address) and _MAILBOX.fullmatch(address):
        return address.decode("ascii")
    return ""


def header_section(message: bytes) -> bytes:
    """The header section of `message` (LF or CRLF line ends), its last line's end
    included, without the empty line that ends it; never more than `HEADER_LIMIT` bytes."""
    head = message[:HEADER_LIMIT]
    end = _HEADER_END.search(head)
    return head if end is None else head[: end.start()]


def _return_path_address(header: bytes) -> bytes | None:
    """The first Return-Path's address as it stands; b"" for `<>`; None for none, or
    for one that holds no address or is longer than any path."""
    value = _first_return_path(header_section(header))
    if value is None:
        return None
    address = _address(value)
    return None if address is None or len(address) > MAX_ADDRESS else address


def _first_return_path(header: bytes) -> bytes | None:
    """The value of the first Return-Path field, its folded lines joined."""
    value: list[bytes] | None = None
    for line in header.split(b"\n"):
        line = line.removesuffix(b"\r")
        if value is not None:
            if not line.startswith((b" ", b"\t")):
                break
            value.append(line)
        elif match := _FIELD_NAME.match(line):
            value = [line[match.end() :]]
    return None if value is None else b" ".join(value)


def _address(value: bytes) -> bytes | None:
    """`<addr>` (route dropped), or a bare `addr`; "" for `<>`; None for anything else."""
    opening = value.find(b"<")
    if opening < 0:
        bare = value.strip(b" \t")
        return bare if bare and len(bare.split()) == 1 else None
    closing = value.find(b">", opening)
    if closing < 0:
        return None
    address = value[opening + 1 : closing].strip(b" \t")
    if address.startswith(b"@") and b":" in address:  # a source route (RFC 5321 C)
        address = address.split(b":", 1)[1]
    return address


class HeaderCapture:
    """Keeps a message's first bytes as they stream by, until its header section has
    ended or `HEADER_LIMIT` bytes were seen: then `complete` is True and `header` is
    that section (a message is never held whole: it may be huge)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self.complete = False

    def feed(self, data: bytes) -> bool:
        """Look at the next bytes of the message; True once the header is known."""
        if self.complete:
            return True
        seen = len(self._data)
        self._data += data[: HEADER_LIMIT - seen]
        # The empty line (CR LF or LF after an LF) may straddle two blocks.
        if _HEADER_END.search(self._data, max(0, seen - 2)) or len(self._data) >= HEADER_LIMIT:
            self.complete = True
        return self.complete

    @property
    def header(self) -> bytes:
        """The header section seen so far (the whole of it once `complete`)."""
        return header_section(bytes(self._data))
