"""One lifetime for every test server: `with Server(...) as server:` starts it and, however
the block ends, stops it and then discards what it left behind (work directories).

A server says how it starts, stops and (if it owns any files) discards; the context
manager is this base's alone, so no server can forget the stop or the clean-up."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ManagedServer:
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """What leaving the `with` block removes after `stop()`: nothing by default."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.discard()
