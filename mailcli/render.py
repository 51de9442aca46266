"""Output: data on stdout, people's messages on stderr; the only importer of rich.

Data goes out in one of three forms, chosen once per run:
- `--json`: one JSON document on stdout;
- stdout is a terminal: a rich table (colour unless `NO_COLOR` is set);
- otherwise: plain tab-separated lines, no header, stable columns, for `cut` and `awk`.

Diagnostics (errors, warnings, progress, the transcript) go to stderr as plain lines.
rich is imported only when a table is drawn on a terminal: it costs ~30 ms to import.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class OutputMode:
    """How this run renders; built once by the CLI from flags and the environment."""

    json: bool = False
    quiet: bool = False
    stdout_tty: bool = False
    stderr_tty: bool = False
    color: bool = True

    @classmethod
    def detect(cls, *, json_output: bool, quiet: bool) -> OutputMode:
        return cls(
            json=json_output,
            quiet=quiet,
            stdout_tty=sys.stdout.isatty(),
            stderr_tty=sys.stderr.isatty(),
            color=not os.environ.get("NO_COLOR"),
        )


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
            file=self.stdout, color_system="auto" if self.mode.color else None, highlight=False
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
        self._messages = messages
        self._task = self._progress.add_task("fetch", total=octets or None)
        self._progress.update(self._task, completed=0)
        self._progress.start()

    def advance(self, octets: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, octets)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
