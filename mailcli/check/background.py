"""A call run in a daemon thread: what the audit runs its probes (and their connections) in.

Not a ThreadPoolExecutor: its worker threads are joined when the interpreter exits, so
a probe still blocked after the audit's deadline kept `check --audit` alive after its
report. A daemon thread never holds the process; the audit shuts down the connections
of the probes that overran (`raw.shut_down_all`) so their threads end too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class Background(Generic[_T]):
    """`Background(call)` starts `call()` in a daemon thread; `result()` returns its value
    or raises its exception once it is done."""

    def __init__(self, call: Callable[[], _T], *, name: str = "audit") -> None:
        self._call = call
        self._done = threading.Event()
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to whoever asks for the result
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True when the call is done (within `timeout` seconds; None: however long)."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The exception the call raised (once done), else None."""
        return self._error

    def result(self) -> _T:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
