"""Durable file writes and locks: the one helper for config, queue, state and mail files.

`atomic_write` gives all-or-nothing replacement that survives a crash or power cut:
write a temporary file in the same directory, fsync it, rename it over the target,
then fsync the directory so the rename itself is on disk.

Every file mailcli creates is created by `create_exclusive`: O_EXCL | O_NOFOLLOW |
O_CLOEXEC, and temporary files get an unpredictable name (secrets.token_hex), so a
symlink planted in a shared folder can never make mailcli write through it. A rename
onto a final name replaces a symlink standing there, not the file it points to.

`FileLock` keeps one process at a time: an exclusive, non-blocking flock on a file
holding the PID. Used by the spool's `queue run` and by `fetch` (one per account). The lock file is
never deleted: removing a lock file while another process waits on it is a race; an
unlocked file with a stale PID in it is harmless, flock is released by the kernel when
its holder dies, even by `kill -9`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from mailcli.errors import CantCreateError, LocalIOError, MailcliError, TempFailError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EIO)


def write_error(exc: OSError, what: str, *, doing: str = "write") -> MailcliError:
    """A failed local write (or `doing`: "remove"): a full disk or an I/O error is 74,
    anything else (read-only, permissions, a file where a folder should be) is 73."""
    where = f" ({exc.filename})" if exc.filename else ""
    message = f"cannot {doing} {what}: {exc.strerror}{where}"
    if exc.errno in _FULL:
        return LocalIOError(message)
    return CantCreateError(message)


@contextlib.contextmanager
def file_errors(what: str) -> Iterator[None]:
    """`with file_errors("the output file X"):` an OSError inside is `write_error`'s
    73/74, never left for a network layer that would take it for its own."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, what) from exc


CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_exclusive(path: Path, mode: int = PRIVATE_FILE) -> int:
    """A new file, opened for writing: never an existing file, never through a symlink."""
    return os.open(path, CREATE_FLAGS, mode)


def unpredictable_name(path: Path, suffix: str = ".part") -> Path:
    """A hidden sibling of `path` that nobody can guess in advance (and plant a link at)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}{suffix}")


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write every byte: a short write (a nearly full disk, a signal) is continued, and
    a write that cannot continue raises, so a caller never takes part for the whole."""
    done = 0
    with memoryview(data) as view:
        while done < len(view):
            written = os.write(fd, view[done:])
            if written <= 0:  # a regular file never answers 0 unless it cannot go on
                raise OSError(errno.EIO, "the write made no progress")
            done += written


def close_and_remove(fd: int, path: Path) -> None:
    """Close a temporary file and remove it, even when close() itself fails (a full
    disk can surface only there); that failure is raised after the removal."""
    try:
        os.close(fd)
    finally:
        path.unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page of the file system holding `path` (syncfs(2)): one call
    makes a whole batch of files durable, where an fsync per file costs ~0.5 ms each."""
    import ctypes

    fd = os.open(path, os.O_RDONLY)
    try:
        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None:
            os.sync()  # no syncfs (not Linux): every file system, still correct
        elif syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> None:
    """Create the directory (and parents) with mode 0700 where missing."""
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Replace `path` with `data` durably; readers see the old or the new file, whole."""
    partial = PartialFile(path, mode=mode)
    try:
        partial.write(data)
    except BaseException:
        partial.discard()
        raise
    partial.commit()


class PartialFile:
    """A file that appears under its name only when complete: written to a hidden
    temporary beside it, then `commit()` (fsync, rename, fsync the folder) or
    `discard()`. Nobody ever sees half a message under the final name."""

    def __init__(self, path: Path, *, mode: int = PRIVATE_FILE) -> None:
        self.path = path
        # Unpredictable and exclusive: a name known in advance (the PID) let anyone plant
        # a symlink there and have mailcli write through it. A process killed here leaves
        # a hidden `.NAME.HEX.part` behind, never under the final name.
        self.temporary = unpredictable_name(path)
        self._handle = os.fdopen(create_exclusive(self.temporary, mode), "wb")

    def fileno(self) -> int:
        return self._handle.fileno()

    def write(self, data: bytes) -> None:
        self._handle.write(data)

    def commit(self) -> None:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        fsync_directory(self.path.parent)

    def discard(self) -> None:
        try:
            self._handle.close()  # flushes what is buffered: may fail on a full disk
        finally:
            self.temporary.unlink(missing_ok=True)


_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class FileLock:
    """`with FileLock(path, "queue run"):` or TempFailError (75) naming the holder;
    with `wait=True` it waits for the holder instead (a holder whose work is bounded)."""

    def __init__(self, path: Path, what: str, *, wait: bool = False) -> None:
        self.path = path
        self.what = what
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        try:
            ensure_private_dir(self.path.parent)
            # Never through a symlink: the PID written below would land in its target.
            fd = os.open(self.path, _LOCK_FLAGS, PRIVATE_FILE)
        except OSError as exc:
            raise write_error(exc, f"the lock file {self.path}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise TempFailError(
                f"another {self.what} is running (pid {holder}); try again later",
                hint=f"lock file: {self.path}",
            ) from None
        try:
            os.ftruncate(fd, 0)
            write_all(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: 74 like any other write, never a crash
            os.close(fd)
            raise write_error(exc, f"the lock file {self.path}") from exc
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Closing releases the flock, even when close() reports an error: the file
            # holds nothing that matters, so the run's outcome stands.
            with contextlib.suppress(OSError):
                os.close(fd)
