"""The standard streams of one run, guarded: what the process was given decides the
outcome, never a crash. The CLI enters `StandardStreams` around every command:

- stdout carries data: the reader gone (EPIPE) stops the run as SIGPIPE would
  (`errors.Stopped`, exit 141 `ExitStatus.BROKEN_PIPE`, quietly); closed (`>&-`) or
  failing (a full disk) is 74 with one line on stderr;
- stderr carries diagnostics: closed or failing, they are dropped, and the exit status
  is what it would have been;
- stdin closed (`<&-`): reading it is 66.

After a failure the stream's descriptor is pointed at /dev/null, so what the stream
still buffers cannot fail again when the interpreter flushes it on exit.
`render.Terminal` reads the guarded streams like any others.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import Any, TextIO, cast


class StandardStreams:
    """`with StandardStreams() as streams:` the three standard streams guarded for one
    run (see the module's docstring); `streams.flush()` makes stdout's buffered data
    meet its fate inside the run, where its failure still decides the exit status."""

    def __enter__(self) -> StandardStreams:
        self._saved = (sys.stdin, sys.stdout, sys.stderr)
        sys.stdin = sys.stdin if sys.stdin is not None else cast(TextIO, _ClosedInput())
        sys.stdout = cast(TextIO, _Guarded(sys.stdout or _closed_output(), data=True))
        sys.stderr = cast(TextIO, _Guarded(sys.stderr or _closed_output(), data=False))
        return self

    def flush(self) -> None:
        sys.stdout.flush()

    def __exit__(self, *_: object) -> None:
        from mailcli.errors import MailcliError, Stopped

        # The run's status is decided: what is still buffered goes now, or never.
        with contextlib.suppress(MailcliError, Stopped):
            sys.stdout.flush()
        sys.stdin, sys.stdout, sys.stderr = self._saved


class _Guarded:
    """An output stream (text, or its binary buffer) whose failure is the run's
    documented outcome: for data (stdout) SIGPIPE or 74, for diagnostics nothing."""

    def __init__(self, stream: Any, *, data: bool) -> None:
        self._stream = stream
        self._data = data

    def write(self, chunk: Any) -> Any:
        try:
            return self._stream.write(chunk)
        except OSError as exc:
            self._failed(exc)
            return len(chunk)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self._failed(exc)

    def isatty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (OSError, ValueError):
            return False

    @property
    def buffer(self) -> _Guarded:
        return _Guarded(self._stream.buffer, data=self._data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _failed(self, exc: OSError) -> None:
        _point_at_devnull(self._stream)
        if not self._data:
            return  # a diagnostic nobody can read: the exit status still tells
        from mailcli.errors import LocalIOError, Stopped

        if exc.errno == errno.EPIPE:
            import signal

            raise Stopped(signal.SIGPIPE) from None
        why = "it is closed" if exc.errno == errno.EBADF else exc.strerror or str(exc)
        raise LocalIOError(f"cannot write to standard output: {why}") from None


def _point_at_devnull(stream: Any) -> None:
    try:
        descriptor = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):  # not a descriptor (tests), or none left
        return
    try:
        os.dup2(devnull, descriptor)
    except OSError:
        pass
    finally:
        os.close(devnull)


def _closed_output() -> TextIO:
    """What Python gives no stream for (`>&-`): every write fails as on a closed one."""

    class ClosedDescriptor(io.RawIOBase):  # built only then: an ABC costs at start-up
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    return io.TextIOWrapper(io.BufferedWriter(ClosedDescriptor()), encoding="utf-8")


class _ClosedInput:
    """stdin when Python started without one (`<&-`): reading it is 66."""

    def _closed(self, *_: object) -> Any:
        from mailcli.errors import NoInputError

        raise NoInputError("cannot read standard input: it is closed")

    read = readline = readlines = readinto = _closed

    def fileno(self) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self) -> _ClosedInput:
        return self
