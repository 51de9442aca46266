"""POP3 multi-line responses, streamed: un-dot-stuffing block by block, flat memory.

A multi-line response (RFC 1939, 3) is a series of CRLF-terminated lines ending with a
line holding only ".". A line that begins with "." has had another "." put in front of
it by the server ("dot-stuffing"); the reader removes it. poplib collects the whole
response as a list of lines and refuses lines over 2048 bytes; this module instead
works on large blocks with `bytes.find`/`bytes.replace` (per-line Python work is what
makes a client slow) and never holds more than one block plus one unfinished line head.

Line ends are passed through as the server sent them (CRLF), so a RETR's output has
exactly the octets LIST reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from mailcli.errors import ProtocolError, TempFailError

BLOCK_SIZE = 256 * 1024
# The end of a response: a line holding only ".", after a line end. Bare LF is
# tolerated, as many clients do, for servers that send it.
_TERMINATOR = re.compile(rb"\n\.\r?\n")

Write = Callable[[bytes], object]


def unstuff(lines: bytes, *, at_line_start: bool = True) -> bytes:
    """Remove the stuffed dot of every line that begins with "..", as poplib does.

    `lines` holds no terminator line; `at_line_start` says whether its first byte
    begins a line (it does not when a very long line was split across blocks).
    """
    data = lines.replace(b"\n..", b"\n.")
    return data[1:] if at_line_start and data.startswith(b"..") else data


def stuff(data: bytes) -> bytes:
    """The inverse, as a server (or the tests) would send a message."""
    data = data.replace(b"\n.", b"\n..")
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
            cut = data.rfind(b"\n") + 1
            if cut:  # write the complete lines; keep the unfinished one
                self._emit(data[:cut], at_line_start)
                pending, at_line_start = data[cut:], True
            elif len(data) > BLOCK_SIZE:  # one very long line: write its head now
                self._emit(data, at_line_start)
                pending, at_line_start = b"", False
            else:
                pending = data

    def _emit(self, lines: bytes, at_line_start: bool) -> None:
        if not lines:
            return
        data = unstuff(lines, at_line_start=at_line_start)
        self.lines += lines.count(b"\n")
        self.octets += len(data)
        if self.limit is not None and self.octets > self.limit:
            raise ProtocolError(f"the server sent more than {self.limit} octets in one response")
        self.write(data)


def _terminator(data: bytes, at_line_start: bool) -> tuple[int, int] | None:
    """(start, stop) of the terminator line in `data`, or None if it has not come yet."""
    if at_line_start and data.startswith((b".\r\n", b".\n")):
        return 0, data.index(b"\n") + 1
    match = _TERMINATOR.search(data)
    return (match.start() + 1, match.end()) if match else None


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
