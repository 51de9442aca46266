"""POP3 multi-line responses, streamed: un-dot-stuffing block by block, flat memory.

A multi-line response (RFC 1939, 3) is a series of CRLF-terminated lines ending with a
line holding only ".". A line that begins with "." has had another "." put in front of
it by the server ("dot-stuffing"); the reader removes it. poplib collects the whole
response as a list of lines and refuses lines over 2048 bytes; this module instead
works on large blocks with `bytes.find`/`bytes.replace` (per-line Python work is what
makes a client slow) and never holds more than one block plus one unfinished line head.

Line ends are passed through as the server sent them (CRLF), so a RETR's output has
exactly the octets LIST reported.

Only CRLF "." CRLF ends a response (or ".\r\n" as its very first line), and only a
"." that begins a CRLF-delimited line is a stuffed one. A bare LF or CR inside a
message is data: "\n.\n" is three octets of the message, not its end. (Accepting it as
the end recorded a truncated copy as delivered, and a later --delete removed the
original.) A server that ends its lines with bare LF therefore never
ends a response: the timeout (75) or the octet limit (76) stops it, nothing is recorded.
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


def unstuff(lines: bytes, *, at_line_start: bool = True) -> bytes:
    """Remove the stuffed dot of every CRLF-delimited line that begins with "..".

    `lines` holds no terminator line; `at_line_start` says whether its first byte
    begins a line (it does not when a very long line was split across blocks).
    """
    data = lines.replace(b"\r\n..", b"\r\n.")
    return data[1:] if at_line_start and data.startswith(b"..") else data


def stuff(data: bytes) -> bytes:
    """The inverse, as a server (or the tests) would send a message: a "." that begins
    a CRLF-delimited line (or the message) gets another in front of it."""
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


class Source(Protocol):
    """A buffered reader: `peek` shows buffered bytes (reading once if none are),
    `read(n)` consumes n of them. io.BufferedReader is one."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int = ..., /) -> bytes: ...


class MultilineCopier:
    """Copies one multi-line response from `source` to `write`, un-stuffed, consuming
    exactly the response: a pipelined reply behind it stays in the source's buffer.

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
        pending = b""  # consumed, not yet written: the start of an unfinished line
        at_line_start = True  # does pending (or the next byte) begin a line?
        while True:
            chunk = self.source.peek(BLOCK_SIZE)
            if not chunk:
                raise TempFailError("the connection closed in the middle of a response")
            data = pending + chunk
            terminator = _terminator(data, at_line_start)
            if terminator is not None:
                start, stop = terminator
                self.source.read(stop - len(pending))  # through the terminator line only
                self._emit(data[:start], at_line_start)
                return self.octets
            self.source.read(len(chunk))
            pending, at_line_start = self._emit_complete(data, at_line_start)

    def _emit_complete(self, data: bytes, at_line_start: bool) -> tuple[bytes, bool]:
        """Write what cannot be part of a terminator or a stuffed dot any more; return
        the rest (pending) and whether it begins a line."""
        cut = data.rfind(CRLF)
        if cut >= 0:  # write the complete lines; keep the unfinished one
            self._emit(data[: cut + 2], at_line_start)
            return data[cut + 2 :], True
        if len(data) > BLOCK_SIZE:  # one very long line: write its head now
            # A CR at the end may begin the CRLF before a terminator: keep it.
            keep = 1 if data.endswith(b"\r") else 0
            self._emit(data[: len(data) - keep], at_line_start)
            return data[len(data) - keep :], False
        return data, at_line_start

    def _emit(self, lines: bytes, at_line_start: bool) -> None:
        if not lines:
            return
        data = unstuff(lines, at_line_start=at_line_start)
        self.lines += lines.count(CRLF)
        self.octets += len(data)
        if self.limit is not None and self.octets > self.limit:
            raise ProtocolError(f"the server sent more than {self.limit} octets in one response")
        self.write(data)


def _terminator(data: bytes, at_line_start: bool) -> tuple[int, int] | None:
    """(start, stop) of the terminator line in `data`, or None if it has not come yet."""
    if at_line_start and data.startswith(_FIRST_TERMINATOR):
        return 0, len(_FIRST_TERMINATOR)
    found = data.find(_TERMINATOR)
    return (found + 2, found + len(_TERMINATOR)) if found >= 0 else None


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
