"""The POP3 mailbox commands on an open session: STAT, LIST, UIDL, TOP, RETR, DELE.

Message numbers are valid within one session only; UIDs (UIDL) are stable across
sessions, so `retr --uid` and `dele --uid` resolve them inside the same session.

`quit=True` says a command is the session's last: QUIT may then go in its write
(`Pop3Session.send`: with PIPELINING and nothing marked for deletion). `delete` never
passes it: there QUIT is the commit point and goes alone, after every DELE's answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from mailcli.errors import NoInputError, ProtocolError, UsageError
from mailcli.pop3.multiline import size_difference
from mailcli.pop3.session import MAX_LISTING, Pop3Session
from mailcli.pop3.wire import NegativeReply


class MessageInfo(NamedTuple):
    number: int
    size: int | None = None
    uid: str | None = None


class HeaderSummary(NamedTuple):
    sender: str
    date: str
    subject: str


def stat(pop: Pop3Session, *, quit: bool = False) -> tuple[int, int]:
    """(message count, total octets)."""
    fields = pop.command("STAT", quit=quit).split()
    return _ints(fields[1:3], "STAT")


def list_messages(
    pop: Pop3Session, numbers: Sequence[int] = (), *, quit: bool = False
) -> list[MessageInfo]:
    """Numbers, sizes and UIDs (UIDL when the server has it). For the whole mailbox,
    LIST and UIDL go in one write when the server offers PIPELINING; UIDL's answer is
    read after LIST's listing either way, so a -ERR to it means the same."""
    grouped = not numbers and pop.pipelining
    if grouped:
        pop.send("LIST", "UIDL", quit=quit)
        sizes = dict(_read_scan(pop, "LIST"))
    else:
        sizes = dict(_scan(pop, "LIST", numbers))
    try:
        uids = dict(
            _read_scan(pop, "UIDL")
            if grouped
            else _scan(pop, "UIDL", numbers, quit=quit, listed=True)
        )
    except NegativeReply:  # a server without UIDL (RFC 1939 makes it optional)
        uids = {}
    return [MessageInfo(n, int(size), uids.get(n)) for n, size in sizes.items()]


def list_uids(
    pop: Pop3Session, numbers: Sequence[int] = (), *, quit: bool = False
) -> list[MessageInfo]:
    return [MessageInfo(n, None, uid) for n, uid in _scan(pop, "UIDL", numbers, quit=quit)]


def number_for_uid(pop: Pop3Session, uid: str) -> int:
    for number, found in _scan(pop, "UIDL", ()):
        if found == uid:
            return number
    raise NoInputError(f"no message with UID {uid!r} on the server")


def _scan(
    pop: Pop3Session,
    verb: str,
    numbers: Sequence[int],
    *,
    quit: bool = False,
    listed: bool = False,
) -> list[tuple[int, str]]:
    """LIST/UIDL, of everything or of the given numbers: [(number, value)]. A -ERR about
    a given number is "no such message" (66), unless `listed` (LIST just answered for
    it): then it is the verb's own refusal (NegativeReply), as for the whole mailbox."""
    if not numbers:
        pop.send(verb, quit=quit)
        return _read_scan(pop, verb)
    found = []
    for index, number in enumerate(numbers):
        last = quit and index == len(numbers) - 1
        if listed:
            pop.send(f"{verb} {number}", quit=last)
            reply = wire_text(pop.read_ok())
        else:
            reply = wire_text(pop.message_command(verb, number, quit=last))
        found.append(_pair(reply.split(" ", 1)[1] if " " in reply else "", verb))
    return found


def _read_scan(pop: Pop3Session, verb: str) -> list[tuple[int, str]]:
    """The reply to a LIST/UIDL of everything, already sent: -ERR raises NegativeReply."""
    pop.read_ok()
    return [_pair(wire_text(line), verb) for line in pop.read_listing()]


def wire_text(data: bytes) -> str:
    """Server bytes as str, losslessly: bytes that are not UTF-8 become lone surrogates
    ('surrogateescape'), so distinct UIDs stay distinct and `uid_bytes` gives them back."""
    return data.decode("utf-8", "surrogateescape")


def uid_bytes(uid: str) -> bytes:
    """The exact bytes the server sent for this UID."""
    return uid.encode("utf-8", "surrogateescape")


def display_uid(uid: str | None) -> str | None:
    """A UID for output (TSV, table, JSON): as sent when it is UTF-8; each other byte
    shown as \\xNN. Display only: matching (`--uid`) always uses the exact bytes."""
    return None if uid is None else uid_bytes(uid).decode("utf-8", "backslashreplace")


def _pair(text: str, verb: str) -> tuple[int, str]:
    """`n SP value` (RFC 1939), split on ASCII space only: the value is everything after
    the first run of spaces, line end (CR/LF) stripped, kept exactly (a UID may hold any
    other byte; Unicode spaces such as NBSP are part of it). LIST's value is the size,
    the first field after the number (a scan listing may carry more after it)."""
    number, _, value = text.lstrip(" ").partition(" ")
    value = value.lstrip(" ").rstrip("\r\n")
    if verb == "LIST":
        value = value.partition(" ")[0]
    if not _number(number) or not value or (verb == "LIST" and not _number(value)):
        raise ProtocolError(f"malformed {verb} line: {display_uid(text[:80])!r}")
    return int(number), value


def _number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "¹" and "٣", which int() refuses."""
    return text.isascii() and text.isdigit()


def _ints(fields: Sequence[str], verb: str) -> tuple[int, int]:
    if len(fields) != 2 or not all(_number(field) for field in fields):
        raise ProtocolError(f"malformed {verb} reply: {' '.join(fields)[:80]!r}")
    return int(fields[0]), int(fields[1])


def retrieve(
    pop: Pop3Session,
    number: int,
    write: Callable[[bytes], object],
    *,
    top_lines: int | None = None,
    limit: int | None = None,
    quit: bool = False,
) -> int:
    """RETR (or TOP n LINES) streamed to `write`, un-stuffed; returns the octets."""
    # The size note is for the transcript, so LIST is asked only when there is one.
    listed = _listed_size(pop, number) if top_lines is None and pop.transcript.enabled else None
    if top_lines is None:
        pop.message_command("RETR", number, quit=quit)
    else:
        pop.message_command("TOP", number, top_lines, quit=quit)
    octets = _copy_body(pop, write, limit)
    if listed is not None and octets != listed:
        pop.transcript.info(size_difference(number, listed, octets))
    return octets


def _listed_size(pop: Pop3Session, number: int) -> int | None:
    """LIST n's size, or None when the server will not say (-ERR or malformed)."""
    try:
        return _ints(pop.command(f"LIST {number}").split()[1:3], "LIST")[1]
    except (NegativeReply, ProtocolError):
        return None


def _copy_body(pop: Pop3Session, write: Callable[[bytes], object], limit: int | None) -> int:
    transcript = pop.transcript
    if transcript.show_data:
        inner = write

        def write(data: bytes) -> None:
            for line in data.splitlines():
                transcript.data_line("recv", line)
            inner(data)

    body = pop.read_body(write, limit=limit)
    if not transcript.show_data:
        transcript.data_summary("recv", body.lines, body.octets)
    transcript.received(b".")
    return body.octets


def header_summaries(
    pop: Pop3Session, numbers: Sequence[int], *, quit: bool = False
) -> Iterator[tuple[int, HeaderSummary]]:
    """From, Date and Subject of each message via `TOP n 0`, pipelined when offered."""
    for number in pop.pipelined("TOP", numbers, 0, quit=quit):
        yield number, _summary(_read_headers(pop))


def _read_headers(pop: Pop3Session) -> bytes:
    """The body of a `TOP n 0` reply whose +OK was read: the message's header."""
    buffer = bytearray()
    body = pop.read_body(buffer.extend, limit=MAX_LISTING)
    pop.transcript.data_summary("recv", body.lines, body.octets)
    return bytes(buffer)


def _summary(headers: bytes) -> HeaderSummary:
    """From, Date, Subject for display: RFC 2047 words decoded, folding undone. The
    legacy parser keeps the raw values (the modern policy's header objects cost about
    0.25 ms a message, most of `list --headers`)."""
    from email.parser import BytesHeaderParser

    parsed = BytesHeaderParser().parsebytes(headers)
    return HeaderSummary(*(_display(parsed.get(name)) for name in ("From", "Date", "Subject")))


def _display(value: object) -> str:
    from email.header import decode_header, make_header

    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):  # a malformed encoded word: show it raw
        text = str(value)
    return " ".join(text.split())


def mark_deleted(pop: Pop3Session, numbers: Sequence[int]) -> list[int]:
    """DELE each, pipelined when offered; only marks: QUIT makes it happen."""
    return list(pop.pipelined("DELE", numbers))


def parse_message_set(specs: Iterable[str]) -> list[int]:
    """`1 3-5 9` -> [1, 3, 4, 5, 9]; usage error for anything else."""
    numbers: list[int] = []
    for spec in specs:
        for part in spec.split(","):
            low, dash, high = part.strip().partition("-")
            if not _number(low) or (dash and not _number(high)):
                raise UsageError(f"not a message number or range: {part!r} (use 3 or 1-5)")
            first, last = int(low), int(high) if dash else int(low)
            if first < 1 or last < first:
                raise UsageError(f"not a valid range: {part!r}")
            numbers.extend(range(first, last + 1))
    return list(dict.fromkeys(numbers))


class Deletion(NamedTuple):
    """What `delete` did: the messages marked, and the server's answer to QUIT."""

    marked: list[MessageInfo]
    quit_reply: str
    dry_run: bool


def delete(
    pop: Pop3Session,
    *,
    numbers: Sequence[int] = (),
    uids: Sequence[str] = (),
    everything: bool = False,
    dry_run: bool = False,
) -> Deletion:
    """DELE the messages, then QUIT (after RSET for a dry run). A message that does not
    exist stops everything before QUIT: then nothing at all is deleted."""
    try:
        by_uid = {info.uid: info.number for info in list_uids(pop)}
    except NegativeReply:  # no UIDL: numbers only
        by_uid = {}
    if everything:
        numbers = list(range(1, stat(pop)[0] + 1))
    elif uids:
        numbers = [_number_of(by_uid, uid) for uid in uids]
    mark_deleted(pop, numbers)
    if dry_run:
        pop.command("RSET")
    quit_reply = pop.quit()  # raises when QUIT fails: then nothing was deleted
    uid_of = {number: uid for uid, number in by_uid.items()}
    return Deletion([MessageInfo(n, None, uid_of.get(n)) for n in numbers], quit_reply, dry_run)


def _number_of(by_uid: dict[str | None, int], uid: str) -> int:
    if uid not in by_uid:
        raise NoInputError(f"no message with UID {uid!r} on the server")
    return by_uid[uid]
