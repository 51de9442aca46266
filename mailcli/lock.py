"""One process at a time: an exclusive, non-blocking flock on a file holding the PID.

Used by the spool's `queue run` and by `fetch` (one per account). The lock file is
never deleted: removing a lock file while another process waits on it is a race; an
unlocked file with a stale PID in it is harmless, flock is released by the kernel when
its holder dies, even by `kill -9`.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from mailcli.errors import TempFailError
from mailcli.fsutil import PRIVATE_FILE, ensure_private_dir, write_error

_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class FileLock:
    """`with FileLock(path, "queue run"):` or TempFailError (75) naming the holder."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        try:
            ensure_private_dir(self.path.parent)
            # Never through a symlink: the PID written below would land in its target.
            fd = os.open(self.path, _LOCK_FLAGS, PRIVATE_FILE)
        except OSError as exc:
            raise write_error(exc, f"the lock file {self.path}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise TempFailError(
                f"another {self.what} is running (pid {holder}); try again later",
                hint=f"lock file: {self.path}",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
