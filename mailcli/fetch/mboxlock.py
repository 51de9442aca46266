"""The locks mail programs agree on for an mbox: an fcntl lock on the file and a
dot-lock (`FILE.lock`, created with link(2)), as procmail, mutt and the `mailbox` module
take them.

Another program holding either (procmail delivering, a mail reader saving) is waited
for, up to a bound (fetch's `--timeout`, 30 s by default), then TempFailError (75):
nothing has been written. Both are tried without blocking and, when one is held, the
other is let go before waiting again: procmail takes the dot-lock first and then the
fcntl lock (blocking), so holding our fcntl lock while waiting for its dot-lock would
stall both until our bound ran out.

A dot-lock left behind is stale, as procmail judges one: ours (and dotlockfile's) hold
the PID of their holder, and one whose process is gone is removed at once; any other
(procmail's are empty) is removed once its last change is older than 1024 s,
procmail's LOCKTIMEOUT. So a fetch killed with -9 does not block the next one. Our
hidden temporaries (`.FILE.lock.HEX.part`, the PID, linked to the dot-lock) that a kill
or a failing disk left are removed the same way once their process is gone. A dot-lock
that cannot be removed at the end is 73/74: other programs wait for it until it is stale.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import time
from pathlib import Path

from mailcli.errors import TempFailError
from mailcli.fsutil import create_exclusive, unpredictable_name, write_all, write_error

STALE_AFTER = 1024.0  # procmail's LOCKTIMEOUT
RETRY_EVERY = 0.2  # seconds between tries while another program holds a lock


class MboxLock:
    """`MboxLock(path, wait=SECONDS)`: both locks of `path`, held until `release()`."""

    def __init__(self, path: Path, *, wait: float = 0.0) -> None:
        self.dotlock = path.with_name(path.name + ".lock")
        try:
            self._fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise write_error(exc, f"the mbox {path}") from exc
        deadline = time.monotonic() + wait
        try:
            while (held := self._try()) is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TempFailError(
                        f"{held} (waited {wait:g} s); try again later",
                        hint="fetch waits for the mbox's locks as long as --timeout",
                    )
                time.sleep(min(RETRY_EVERY, left))
        except BaseException:
            os.close(self._fd)
            raise
        self._remove_stale_temporaries()

    def _try(self) -> str | None:
        """Both locks, or neither and what holds us up."""
        import fcntl

        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: someone holds it
            return f"{self.dotlock.with_suffix('')} is locked by another program"
        if self._take_dotlock():
            return None
        fcntl.lockf(self._fd, fcntl.LOCK_UN)
        return f"{self.dotlock} exists: another program is using the mbox"

    def _take_dotlock(self) -> bool:
        # An unpredictable name, created exclusively: a PID-named one could be a symlink
        # planted by someone else, and writing the PID would go through it.
        mine = unpredictable_name(self.dotlock)
        try:
            fd = create_exclusive(mine)
            try:
                write_all(fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(fd)  # its failure (a full disk) is a failed write too
        except OSError as exc:
            with contextlib.suppress(OSError):  # the disk's first error is the one to tell
                mine.unlink(missing_ok=True)
            raise write_error(exc, f"the dot-lock {self.dotlock}") from exc
        taken = False
        try:
            taken = self._link(mine)
        except OSError as exc:  # a full disk at the link, or at a stale lock's removal
            raise write_error(exc, f"the dot-lock {self.dotlock}") from exc
        finally:
            try:
                mine.unlink(missing_ok=True)
            except OSError as exc:
                # Holding the dot-lock with its temporary stuck beside it: let the lock
                # go, the disk's error says why (the temporary holds our PID, nothing else).
                if taken:  # else left holding our PID: stale for the next run
                    with contextlib.suppress(OSError):
                        self.dotlock.unlink(missing_ok=True)
                raise write_error(exc, f"the dot-lock's temporary {mine}", doing="remove") from exc
        return taken

    def _link(self, mine: Path) -> bool:
        for _ in range(2):
            try:
                os.link(mine, self.dotlock)
                return True
            except FileExistsError:
                if not self._stale():
                    return False
                self.dotlock.unlink(missing_ok=True)
        return False

    def _stale(self) -> bool:
        try:
            text = self.dotlock.read_text(errors="replace").strip()
            age = time.time() - self.dotlock.stat().st_mtime
        except OSError:
            return True  # gone meanwhile
        if text.isascii() and text.isdigit() and int(text) > 0:
            return not _process_alive(int(text))
        return age > STALE_AFTER

    def _remove_stale_temporaries(self) -> None:
        """Our dot-lock temporaries that a killed run or a failing disk left behind.
        Each holds its creator's PID: one whose process is gone is removed (under both
        locks, so no run of ours is between creating and linking one); one another
        program's run is still writing is kept. Best effort: never fails the run."""
        pattern = f".{glob.escape(self.dotlock.name)}.*.part"
        for path in self.dotlock.parent.glob(pattern):
            with contextlib.suppress(OSError, ValueError):
                if _holder(path) is False:
                    path.unlink()

    def release(self) -> None:
        """Both locks go. A dot-lock that cannot be removed (a failing disk) is 73/74:
        other mail programs wait for it until they judge it stale (procmail: 1024 s);
        our next run finds our dead PID in it and removes it at once."""
        try:
            self.dotlock.unlink(missing_ok=True)
        except OSError as exc:
            raise write_error(exc, f"the dot-lock {self.dotlock}", doing="remove") from exc
        finally:
            with contextlib.suppress(OSError):  # dropped all the same; nothing to lose
                os.close(self._fd)  # closing drops the fcntl lock


def _holder(path: Path) -> bool | None:
    """Whether the process named in a dot-lock temporary is alive; None when the file
    names none (being written, or not ours). Never through a link, never blocking on a
    FIFO: only a regular file is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 32).decode("ascii").strip()
    finally:
        os.close(fd)
    return _process_alive(int(text)) if text.isdigit() and int(text) > 0 else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
