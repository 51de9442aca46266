"""The signals that end a run, turned into an orderly exit in one place.

SIGINT is Python's KeyboardInterrupt (130). SIGTERM and SIGHUP raise `errors.Stopped`
in the main thread, wherever it is: like KeyboardInterrupt it is no Exception, so no
error translation takes it for a failure, and every `finally` and `except
BaseException` cleanup runs (a partial `retr -o` file removed, a fetch's completed
messages recorded, a session closed without QUIT). The CLI then exits 128 + the
signal's number. A second signal while the first one's cleanup runs is ignored.

`held()` defers all three while a temporary file is created and its owner takes charge
of it, so that no signal lands between the two (the file would be left behind).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def stop_on_signals() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _stop)


def ignore_stop_signals() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _ignore)


def _stop(signum: int, frame: object) -> None:
    from mailcli.errors import Stopped

    ignore_stop_signals()  # once: a second signal must not cut the cleanup short
    raise Stopped(signum)


def _ignore(signum: int, frame: object) -> None:
    """Not SIG_IGN: an ignored disposition would be inherited by the programs we run."""


@contextmanager
def held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait (blocked, not lost) until the block is done; the
    handler then runs at once."""
    stopping = {signal.SIGINT, *_STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
