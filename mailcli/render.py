"""Output: data on stdout, people's messages on stderr; the only importer of rich.

Data goes out in one of three forms, chosen once per run:
- `--json`: one JSON document on stdout;
- stdout is a terminal: a rich table (colour unless `NO_COLOR` is set);
- otherwise: plain tab-separated lines, no header, stable columns, for `cut` and `awk`.

Diagnostics (errors, warnings, progress, the transcript) go to stderr as plain lines.
rich is imported only when a table is drawn on a terminal: it costs ~30 ms to import.

`Terminal` is the one place that asks the process about its terminal: the three
streams, which of them is a terminal, colour (`NO_COLOR`) and width. The CLI builds one
per run and every command asks it (a prompt only when stdin is a terminal, a message's
bytes to stdout's binary buffer), never `sys.stdin.isatty()` on its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, NamedTuple, TextIO

DEFAULT_WIDTH = 80  # when stdout is not a terminal and $COLUMNS does not say


class Terminal(NamedTuple):
    """The process's streams and what they are connected to, asked once per run."""

    # A NamedTuple, not a frozen dataclass: built at every run's import, and a dataclass
    # costs ~0.7 ms to build (start-up).
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdin_tty: bool = False
    stdout_tty: bool = False
    stderr_tty: bool = False
    color: bool = True  # False when NO_COLOR is set (to anything but "")

    @classmethod
    def detect(cls, environ: Mapping[str, str] = os.environ) -> Terminal:
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_tty=_isatty(sys.stdin),
            stdout_tty=_isatty(sys.stdout),
            stderr_tty=_isatty(sys.stderr),
            color=not environ.get("NO_COLOR"),
        )

    @property
    def width(self) -> int:
        """Columns for text laid out to fit: $COLUMNS, else stdout's terminal, else 80
        (what shutil.get_terminal_size does, without importing shutil)."""
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        try:
            return os.get_terminal_size(self.stdout.fileno()).columns or DEFAULT_WIDTH
        except (AttributeError, ValueError, OSError):  # not a terminal, or no descriptor
            return DEFAULT_WIDTH

    @property
    def stdin_bytes(self) -> BinaryIO:
        """stdin as bytes (a message to send, a password line is read as text)."""
        return self.stdin.buffer

    @property
    def stdout_bytes(self) -> BinaryIO:
        """stdout as bytes, for messages: flushes the text layer first, keeping order."""
        self.stdout.flush()
        return self.stdout.buffer

    def output_mode(self, *, json_output: bool, quiet: bool) -> OutputMode:
        return OutputMode(
            json=json_output,
            quiet=quiet,
            stdout_tty=self.stdout_tty,
            stderr_tty=self.stderr_tty,
            color=self.color,
            width=self.width if self.stdout_tty else None,  # only tables on a terminal use it
        )

    def renderer(self, *, json_output: bool, quiet: bool) -> Renderer:
        return Renderer(
            self.output_mode(json_output=json_output, quiet=quiet), self.stdout, self.stderr
        )


def _isatty(stream: TextIO | None) -> bool:
    # None when Python started without the descriptor (`mailcli ... <&-`)
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):  # closed under us
        return False


class OutputMode(NamedTuple):
    """How this run renders; built once by the CLI from flags and the `Terminal`
    (a NamedTuple, like `Terminal`)."""

    json: bool = False
    quiet: bool = False
    stdout_tty: bool = False
    stderr_tty: bool = False
    color: bool = True
    width: int | None = None  # of stdout's terminal; None: rich asks the terminal itself


class Renderer:
    """Writes data and diagnostics according to an `OutputMode`."""

    def __init__(
        self, mode: OutputMode, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.mode = mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    # -- data (stdout) -------------------------------------------------------------
    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        document: Any,
        title: str | None = None,
    ) -> None:
        """Rows of data: a rich table on a TTY, tab-separated lines when piped."""
        if self.mode.json:
            self.json(document)
        elif self.mode.stdout_tty:
            self._rich_table(columns, rows, title)
        else:
            for row in rows:
                self.stdout.write("\t".join(_plain(cell) for cell in row) + "\n")

    def fields(self, pairs: Sequence[tuple[str, Any]], *, document: Any) -> None:
        """One record as name/value lines (`name<TAB>value` when piped)."""
        self.table(["field", "value"], pairs, document=document)

    def json(self, document: Any) -> None:
        import json  # only for --json: start-up stays free of it

        self.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")

    def text(self, text: str, *, document: Any = None) -> None:
        """A line of data; under --json the document is written instead."""
        if self.mode.json:
            if document is not None:
                self.json(document)
        else:
            self.stdout.write(text + "\n")

    def raw(self, data: bytes) -> None:
        """Bytes exactly as given (a message), bypassing text encoding."""
        self.stdout.flush()
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:  # a text-only stream (tests): the closest faithful rendering
            self.stdout.write(data.decode("utf-8", "surrogateescape"))

    def progress(self) -> ProgressDisplay:
        """A progress bar on a terminal (stderr); silent otherwise."""
        if self.mode.stderr_tty and not self.mode.quiet and not self.mode.json:
            return _RichProgress(self.stderr, color=self.mode.color)
        return ProgressDisplay()

    # -- diagnostics (stderr) ------------------------------------------------------
    def error(self, message: str, hint: str | None = None) -> None:
        """Always shown, even with -q: `mailcli: error: ...` and an optional hint."""
        self._diagnostic("error", message, "31")
        if hint:
            self._diagnostic("hint", hint, "36")

    def warning(self, message: str) -> None:
        if not self.mode.quiet:
            self._diagnostic("warning", message, "33")

    def info(self, message: str) -> None:
        if not self.mode.quiet:
            self.stderr.write(message + "\n")

    def trace(self, line: str) -> None:
        """A transcript line: shown whenever --trace asked for it, even with -q."""
        self.stderr.write(line + "\n")
        self.stderr.flush()

    def _diagnostic(self, label: str, message: str, ansi_color: str) -> None:
        if self.mode.stderr_tty and self.mode.color:
            label = f"\x1b[{ansi_color}m{label}\x1b[0m"
        self.stderr.write(f"mailcli: {label}: {message}\n")
        self.stderr.flush()

    def _rich_table(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None
    ) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # NO_COLOR: no styling at all (color_system=None), not merely no colours.
        console = Console(
            file=self.stdout,
            color_system="auto" if self.mode.color else None,
            highlight=False,
            width=self.mode.width,
        )
        table = Table(*columns, title=title, box=box.SIMPLE_HEAD, header_style="bold")
        for row in rows:
            table.add_row(*(Text(_plain(cell)) for cell in row))  # Text: no markup
        console.print(table)


EMPTY_CELL = "-"
_BREAKS_COLUMNS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def _plain(cell: Any) -> str:
    """A cell as text, for both the table and the tab-separated lines.

    Tabs and line ends would break the plain format's columns and lines. An empty cell
    (None or "") is shown as "-": `IFS=$'\t' read` merges consecutive tabs, so an empty
    field would shift every later column. JSON keeps the real value.
    """
    if cell is None:
        return EMPTY_CELL
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    return str(cell).translate(_BREAKS_COLUMNS) or EMPTY_CELL


class ProgressDisplay:
    """No display: the interface `fetch` reports to."""

    def start(self, messages: int, octets: int) -> None:
        pass

    def advance(self, octets: int) -> None:
        pass

    def close(self) -> None:
        pass


class _RichProgress(ProgressDisplay):
    """Messages and bytes, with rich's bar, on stderr."""

    def __init__(self, stream: TextIO, *, color: bool) -> None:
        self.stream = stream
        self.color = color
        self._progress: Any = None
        self._task: Any = None

    def start(self, messages: int, octets: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        console = Console(file=self.stream, color_system="auto" if self.color else None)
        self._progress = Progress(
            "fetching",
            MofNCompleteColumn(),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("fetch", total=octets or None)
        self._progress.update(self._task, completed=0)
        self._progress.start()

    def advance(self, octets: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, octets)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
