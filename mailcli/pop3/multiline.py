"""POP3 multi-line responses, streamed: one scanner, two views of what it finds.

A multi-line response (RFC 1939, 3) is a series of CRLF-terminated lines ending with a
line holding only ".". A line that begins with "." has had another "." put in front of
it by the server ("dot-stuffing"). poplib collects the whole response as a list of lines
and refuses lines over 2048 bytes; `scan_body` instead works on large blocks with
`bytes.find` (per-line Python work is what makes a client slow), holds at most one block
plus one unfinished line head, and consumes exactly the response: a pipelined reply
behind it stays in the source's buffer.

Only CRLF "." CRLF ends a response (or ".\r\n" as its very first line), and only a
"." that begins a CRLF-delimited line is a stuffed one. A bare LF or CR inside a
message is data: "\n.\n" is three octets of the message, not its end. (Accepting it as
the end recorded a truncated copy as delivered, and a later --delete removed the
original.) A server that ends its lines with bare LF therefore never
ends a response: the timeout (75) or the octet limit (76) stops it, nothing is recorded.

What the scanner finds goes to one of two copiers:
- `UnstuffingCopier` (RETR, TOP, fetch, the listings): the data, un-stuffed, line ends
  as the server sent them (CRLF), so a RETR's output has exactly the octets LIST
  reported; bounded by an octet limit.
- `ShownLineCopier` (`shell`, the telnet session done properly): every line as sent,
  still dot-stuffed, through the closing "." line: a body line "." arrives as ".." and
  stays "..", so the only lone "." is the terminator. (Un-stuffing it, as `retr` must,
  made a body line "." look exactly like the end of the reply.) A line that ended in
  CRLF is shown ending in LF; a CR or LF inside a line is data, shown as the two
  characters `\\r` or `\\n` (as `\\xNN` stands for a byte elsewhere in the output): a raw
  CR would return the terminal's cursor and hide the start of the line, and a raw LF
  would split one line in two, whose second half could read as the terminator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mailcli.errors import ProtocolError, TempFailError

BLOCK_SIZE = 256 * 1024
CRLF = b"\r\n"
_TERMINATOR = b"\r\n.\r\n"  # the end of a response after its first line
_FIRST_TERMINATOR = b".\r\n"  # the end of a response that has no line at all (yet)

Write = Callable[[bytes], object]


class Source(Protocol):
    """A buffered reader: `peek` shows buffered bytes (reading once if none are),
    `read(n)` consumes n of them. io.BufferedReader is one."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int = ..., /) -> bytes: ...


def scan_body(source: Source, emit: Callable[[bytes, bool], object]) -> None:
    """Scan the body of one multi-line response, handing it to `emit` as sent (still
    stuffed), in order, without its terminator line: `emit(segment, at_line_start)`,
    where a segment is either complete lines (ending in CRLF) or the head of a line
    longer than a block (no CRLF; a CR at its end is held back, as it may begin the CRLF
    before the terminator), and `at_line_start` says whether it begins a line (not the
    rest of a long one). Each segment is consumed from `source` before it is emitted;
    nothing empty is. The response is consumed exactly, through the terminator line (75
    if it never comes). A callback, not a generator: what the emitter makes of a block
    is freed before the next block is read (a suspended generator's consumer still held
    two blocks then: a third more peak memory and page faults in a large RETR).
    """
    pending = b""  # consumed, not yet emitted: the start of an unfinished line
    at_line_start = True  # does pending (or the next byte) begin a line?
    while True:
        chunk = source.peek(BLOCK_SIZE)
        if not chunk:
            raise TempFailError("the connection closed in the middle of a response")
        data = pending + chunk
        terminator = _terminator(data, at_line_start)
        if terminator is not None:
            start, stop = terminator
            source.read(stop - len(pending))  # through the terminator line only
            if start:
                emit(data[:start], at_line_start)
            return
        source.read(len(chunk))
        cut = data.rfind(CRLF)
        if cut >= 0:  # the complete lines now; keep the unfinished one
            emit(data[: cut + 2], at_line_start)
            pending, at_line_start = data[cut + 2 :], True
        elif len(data) > BLOCK_SIZE:  # one very long line: its head now (memory stays flat)
            keep = 1 if data.endswith(b"\r") else 0
            emit(data[: len(data) - keep], at_line_start)
            pending, at_line_start = data[len(data) - keep :], False
        else:
            pending = data


def _terminator(data: bytes, at_line_start: bool) -> tuple[int, int] | None:
    """(start, stop) of the terminator line in `data`, or None if it has not come yet."""
    if at_line_start and data.startswith(_FIRST_TERMINATOR):
        return 0, len(_FIRST_TERMINATOR)
    found = data.find(_TERMINATOR)
    return (found + 2, found + len(_TERMINATOR)) if found >= 0 else None


class UnstuffingCopier:
    """Copies one multi-line response from `source` to `write`, un-stuffed.

    `limit` bounds the octets accepted (a server that never ends its response, or sends
    far more than it announced, is broken: protocol error 76 instead of filling a disk).
    """

    def __init__(self, source: Source, write: Write, *, limit: int | None = None) -> None:
        self.source = source
        self.write = write
        self.limit = limit
        self.octets = 0  # un-stuffed octets written
        self.lines = 0

    def run(self) -> int:
        """Copy until the terminator line; returns the octets written."""
        scan_body(self.source, self._emit)
        return self.octets

    def _emit(self, segment: bytes, at_line_start: bool) -> None:
        data = unstuff(segment, at_line_start=at_line_start)
        self.lines += segment.count(CRLF)
        self.octets += len(data)
        if self.limit is not None and self.octets > self.limit:
            raise ProtocolError(f"the server sent more than {self.limit} octets in one response")
        self.write(data)


class ShownLineCopier:
    """Copies one multi-line response from `source` to `write` as `shown_line`s, each
    ending in LF, the closing "." included."""

    def __init__(self, source: Source, write: Write) -> None:
        self.source = source
        self.write = write
        self.lines = 0  # lines shown, the terminator included

    def run(self) -> int:
        """Copy through the terminator line; returns the lines shown."""
        scan_body(self.source, self._show)
        self.lines += 1
        self.write(b".\n")  # the terminator line
        return self.lines

    def _show(self, segment: bytes, at_line_start: bool) -> None:
        if not segment.endswith(CRLF):  # a long line's head: the rest follows
            self.write(shown_line(segment))
            return
        lines = segment[: -len(CRLF)].split(CRLF)
        self.lines += len(lines)
        self.write(b"".join(shown_line(line) + b"\n" for line in lines))


def shown_line(line: bytes) -> bytes:
    """A line's bytes (its CRLF removed) as `shell` shows them: a CR or LF inside it
    escaped."""
    return line.replace(b"\r", b"\\r").replace(b"\n", b"\\n")


def unstuff(lines: bytes, *, at_line_start: bool = True) -> bytes:
    """Remove the stuffed dot of every CRLF-delimited line that begins with "..".

    `lines` holds no terminator line; `at_line_start` says whether its first byte
    begins a line (it does not when a very long line was split across blocks).
    """
    data = lines.replace(b"\r\n..", b"\r\n.")
    return data[1:] if at_line_start and data.startswith(b"..") else data


def size_difference(number: int, listed: int, octets: int) -> str:
    """The transcript's note when a message's octets differ from LIST's size. Not an
    error (servers count differently, e.g. LF-stored mail counted before CRLF); what is
    kept is still only what ended with the real terminator."""
    return f"message {number}: {octets} octets arrived, LIST said {listed}"


class LfWriter:
    """CRLF -> LF across block boundaries (a CR at a block's end waits for the next)."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._carry = b""

    def write(self, data: bytes) -> None:
        data = self._carry + data
        self._carry = b"\r" if data.endswith(b"\r") else b""
        self._write(data[: len(data) - len(self._carry)].replace(b"\r\n", b"\n"))

    def flush(self) -> None:
        if self._carry:
            self._write(self._carry)
            self._carry = b""
