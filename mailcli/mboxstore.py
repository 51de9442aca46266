"""The mbox destination of `fetch`: locked, appended with mboxrd quoting, journaled.

See `store` for what every destination promises. Here: the mbox is locked as the
`mailbox` module locks it (an fcntl lock and a dot-lock); each batch is preceded by a
journal (the mbox's size, a hash of its tail, the batch's UIDs) so that a batch a crash
left appended but unrecorded is cut off before it is fetched again.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from mailcli.errors import TempFailError
from mailcli.fsutil import PRIVATE_DIR, PRIVATE_FILE, atomic_write, fsync_directory, write_error
from mailcli.multiline import LfWriter
from mailcli.store import MessageWriter, NoJournal

_MBOXRD_FROM = re.compile(rb"^(>*From )", re.MULTILINE)


class Mbox(NoJournal):
    """Appends to an mbox file under the `mailbox` module's locks."""

    batch_size = 256

    def __init__(self, path: Path, *, journal: Path) -> None:
        self.path = path
        self.description = f"mbox:{path}"
        self.journal = journal
        try:
            path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE))
        except OSError as exc:
            raise write_error(exc, f"the mbox {path}") from exc
        self._lock = MboxLock(path)
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the whole run

    def begin_batch(self, uids: list[str]) -> None:
        """Journal first: where the mbox ends now, and which UIDs are about to follow."""

        self._file.flush()
        size = self._file.tell()
        lines = [f"{size} {self._tail_hash(size)}", *uids]
        atomic_write(self.journal, ("\n".join(lines) + "\n").encode())

    def recover(self, is_recorded: Callable[[str], bool]) -> None:
        """A journal left by a crash. If its batch was recorded, it was delivered: keep
        it. Otherwise cut the mbox back to where the batch began (when the mbox still
        ends as the journal says), so that fetching the batch again duplicates nothing."""
        if not self.journal.exists():
            return
        header, *uids = self.journal.read_text().splitlines()
        size_text, _, tail_hash = header.partition(" ")
        size = int(size_text)
        if not all(is_recorded(uid) for uid in uids):
            current = os.path.getsize(self.path)
            if current >= size and self._tail_hash(size) == tail_hash:
                os.truncate(self.path, size)
                os.fsync(self._file.fileno())
        self.batch_recorded()

    def _tail_hash(self, size: int) -> str:
        with open(self.path, "rb") as handle:
            handle.seek(max(0, size - 4096))
            return hashlib.sha256(handle.read(min(size, 4096))).hexdigest()

    def open_message(self, key: str) -> MessageWriter:
        return _MboxWriter(self._file)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def batch_recorded(self) -> None:
        """The batch's UIDs are in the state file: its journal is no longer needed."""
        if self.journal.exists():
            self.journal.unlink()
            fsync_directory(self.journal.parent)

    def delivered_keys(self) -> set[str]:
        return set()

    def close(self) -> None:
        self._file.close()
        self._lock.release()


class MboxLock:
    """The locks mail programs agree on for an mbox, as the `mailbox` module takes them:
    an fcntl lock on the file and a dot-lock (`FILE.lock`, created with link(2)).

    Unlike `mailbox`, a dot-lock left behind by a dead process is recognised (ours hold
    the PID; others are considered stale after 5 minutes, as dotlockfile does) and
    removed, so a fetch killed with -9 does not block the next one.
    """

    STALE_AFTER = 300.0

    def __init__(self, path: Path) -> None:
        import fcntl

        self.dotlock = path.with_name(path.name + ".lock")
        self._fd = os.open(path, os.O_RDWR)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise TempFailError(f"{path} is locked by another program; try again later") from None
        try:
            self._take_dotlock()
        except BaseException:
            os.close(self._fd)
            raise

    def _take_dotlock(self) -> None:
        mine = self.dotlock.with_name(f"{self.dotlock.name}.{os.getpid()}")
        mine.write_text(f"{os.getpid()}\n")
        try:
            for _ in range(2):
                try:
                    os.link(mine, self.dotlock)
                    return
                except FileExistsError:
                    if not self._stale():
                        raise TempFailError(
                            f"{self.dotlock} exists: another program is using the mbox; "
                            "try again later"
                        ) from None
                    self.dotlock.unlink(missing_ok=True)
        finally:
            mine.unlink(missing_ok=True)

    def _stale(self) -> bool:
        try:
            text = self.dotlock.read_text().strip()
            age = time.time() - self.dotlock.stat().st_mtime
        except OSError:
            return True  # gone meanwhile
        if text.isascii() and text.isdigit():
            return not _process_alive(int(text))
        return age > self.STALE_AFTER

    def release(self) -> None:
        self.dotlock.unlink(missing_ok=True)
        os.close(self._fd)  # closing drops the fcntl lock


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _MboxWriter:
    def __init__(self, file: object) -> None:
        import io

        assert isinstance(file, io.BufferedWriter)
        self.file = file
        self.start = file.tell()
        self.at_line_start = True
        self.lf = LfWriter(self._quoted)
        self.write = self.lf.write
        stamp = time.asctime(time.gmtime())
        file.write(f"From MAILER-DAEMON {stamp}\n".encode())

    def _quoted(self, data: bytes) -> None:
        """mboxrd: one more ">" before `>*From ` at a line start."""
        if not data:
            return
        head = b""
        if not self.at_line_start:  # the first bytes continue a line already begun
            cut = data.find(b"\n") + 1 or len(data)
            head, data = data[:cut], data[cut:]
        self.file.write(head + _MBOXRD_FROM.sub(rb">\1", data))
        self.at_line_start = (head + data).endswith(b"\n")

    def finish(self) -> None:
        self.lf.flush()
        self.file.write(b"\n" if self.at_line_start else b"\n\n")

    def abandon(self) -> None:
        self.file.flush()
        self.file.truncate(self.start)
        self.file.seek(self.start)
