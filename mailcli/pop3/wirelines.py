"""POP3 replies as `shell` shows them: every line as received, one per output line.

The shell is the telnet session done properly, so a multi-line reply is shown still
dot-stuffed, through its closing "." line: a body line "." arrives as ".." and stays
"..", so the only lone "." is the terminator. (Un-stuffing it, as `retr` must, made a
body line "." look exactly like the end of the reply.)

Line ends are normalised: a line that ended in CRLF is shown ending in LF, the status
line too. Only CRLF ends a POP3 line; a CR or LF inside a line is data, shown as the
two characters `\\r` or `\\n` (as `\\xNN` stands for a byte elsewhere in the output): a
raw CR would return the terminal's cursor and hide the start of the line, and a raw LF
would split one line in two, whose second half could read as the terminator.

Streamed in blocks, as `multiline` does, with at most one block of an unfinished line
held; the response is consumed exactly, through the terminator line.
"""

from __future__ import annotations

from mailcli.errors import TempFailError
from mailcli.pop3.multiline import BLOCK_SIZE, CRLF, Source, Write

TERMINATOR = b"."


def shown(line: bytes) -> bytes:
    """A line's bytes (its CRLF removed) as shown: a CR or LF inside it escaped."""
    return line.replace(b"\r", b"\\r").replace(b"\n", b"\\n")


class WireLineCopier:
    """Copies one multi-line response from `source` to `write` as `shown` lines, each
    ending in LF, the closing "." included; the response's bytes are kept as sent."""

    def __init__(self, source: Source, write: Write) -> None:
        self.source = source
        self.write = write
        self.lines = 0  # lines shown, the terminator included

    def run(self) -> int:
        """Copy through the terminator line; returns the lines shown."""
        pending = b""  # consumed, not yet shown: the start of an unfinished line
        at_line_start = True  # does pending (or the next byte) begin a line?
        while True:
            chunk = self.source.peek(BLOCK_SIZE)
            if not chunk:
                raise TempFailError("the connection closed in the middle of a response")
            data = pending + chunk
            cut = data.rfind(CRLF)
            if cut < 0:
                self.source.read(len(chunk))
                pending, at_line_start = self._show_long_line_head(data, at_line_start)
                continue
            stop = self._show_lines(data[:cut], at_line_start)
            if stop is not None:
                self.source.read(stop + len(CRLF) - len(pending))  # through the "." only
                return self.lines
            self.source.read(len(chunk))
            pending, at_line_start = data[cut + len(CRLF) :], True

    def _show_lines(self, complete: bytes, at_line_start: bool) -> int | None:
        """Show CRLF-ended lines up to the terminator; where it ends in `complete`, or
        None when it has not come yet."""
        shown_lines = []
        offset = 0
        for line in complete.split(CRLF):
            is_first_part = offset == 0 and not at_line_start  # the tail of a long line
            shown_lines.append(shown(line) + b"\n")
            offset += len(line)
            if line == TERMINATOR and not is_first_part:
                self._emit(b"".join(shown_lines), len(shown_lines))
                return offset
            offset += len(CRLF)
        self._emit(b"".join(shown_lines), len(shown_lines))
        return None

    def _show_long_line_head(self, data: bytes, at_line_start: bool) -> tuple[bytes, bool]:
        """No CRLF yet: show the head of a very long line now (memory stays flat)."""
        if len(data) <= BLOCK_SIZE:
            return data, at_line_start
        keep = 1 if data.endswith(b"\r") else 0  # it may begin the CRLF
        self.write(shown(data[: len(data) - keep]))
        return data[len(data) - keep :], False

    def _emit(self, text: bytes, lines: int) -> None:
        self.lines += lines
        self.write(text)
