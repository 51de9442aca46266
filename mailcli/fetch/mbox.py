"""The mbox destination of `fetch`: locked, appended with mboxrd quoting, journaled.

See `fetch.destination` for what every destination promises. Here: the mbox is locked as the
`mailbox` module locks it (an fcntl lock and a dot-lock, `mboxlock`) for the whole run,
waiting up to `lock_wait` seconds for another program that holds them. A batch's
messages are first written to a private batch file in the fetch state folder (a message
cut short is cut from that file, never from the mbox). `commit()` syncs the batch file,
writes a journal naming the mbox (path, device, inode), its size and each message's
offsets and sha256 (`mboxjournal`), and only then appends the batch to the mbox and
syncs it. Once fetch has recorded the batch's UIDs, the journal is removed. After a
crash, the next run of the same account settles the journal on that same file: it keeps
and records the messages found whole, and removes only bytes it can prove the batch
wrote. Another account's run refuses to write an mbox with such a journal.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from mailcli.errors import CantCreateError, MailcliError, TempFailError
from mailcli.fetch.destination import BATCH_SIZE, MessageWriter, RecoveryHooks
from mailcli.fetch.mboxjournal import (
    Entry,
    Journal,
    journal_path,
    owned_journals,
    read_journal,
    settle,
)
from mailcli.fetch.mboxlock import MboxLock
from mailcli.fetch.sender import HeaderCapture, envelope_sender
from mailcli.fsutil import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    atomic_write,
    close_and_remove,
    file_errors,
    fsync_directory,
    write_error,
)
from mailcli.pop3.multiline import LfWriter

_MBOXRD_FROM = re.compile(rb"^(>*From )", re.MULTILINE)


class Mbox(RecoveryHooks):
    """Appends to an mbox file under the `mailbox` module's locks, batch by batch."""

    def __init__(
        self, path: Path, *, journal: Path, lock_wait: float = 0.0, batch_size: int = BATCH_SIZE
    ) -> None:
        """`journal`: this fetch state's journal name; its folder holds the journals
        and batch files, its stem names the owner. `lock_wait`: how long to wait for
        another program's locks on an mbox (`mboxlock`)."""
        self.path = path
        self.batch_size = batch_size
        self.description = f"mbox:{path}"
        self.state_dir, self.owner = journal.parent, journal.stem
        try:
            path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE))
        except OSError as exc:
            raise write_error(exc, f"the mbox {path}") from exc
        self.lock_wait = lock_wait
        self._lock = MboxLock(path, wait=lock_wait)
        try:
            # The one descriptor this run has on the mbox: closing any other would drop
            # the fcntl lock. Positions come from fstat, never from a file object.
            with file_errors(f"the mbox {path}"):
                self._fd = os.open(path, os.O_RDWR)
                info = os.fstat(self._fd)
            self._identity = (info.st_dev, info.st_ino)
            self.journal = journal_path(self.state_dir, *self._identity)
            self._refuse_foreign_journal()
        except BaseException:
            with contextlib.suppress(OSError, AttributeError):
                os.close(self._fd)
            with contextlib.suppress(MailcliError):  # the error in flight says why
                self._lock.release()
            raise
        self._batch = _BatchFile(self.state_dir, self.owner)
        self._journaled = False
        self._settled: list[tuple[Path, Path]] = []  # (journal, batch file) recovered
        self._recovered: set[str] = set()

    def _refuse_foreign_journal(self) -> None:
        if not self.journal.exists():
            return
        journal = read_journal(self.journal)
        if journal.owner != self.owner:
            raise TempFailError(
                f"{self.path} ends with an unfinished batch of another account's fetch "
                f"({journal.owner}, journal {self.journal}): run that account's fetch first"
            )

    def recover(self, is_recorded: Callable[[str], bool]) -> None:
        """Settle every journal this account's killed runs left (`mboxjournal.settle`),
        each on its own file; `delivered_keys()` then names the messages found whole,
        and `batch_recorded()` removes the journals once fetch has recorded them."""
        with file_errors(f"the mbox {self.path} (settling a killed fetch's batch)"):
            for path, journal in owned_journals(self.state_dir, self.owner):
                if (journal.dev, journal.ino) == self._identity:
                    keys = settle(journal, path, self._fd)
                else:
                    keys = _settle_elsewhere(path, journal, self.lock_wait)
                self._recovered.update(keys)
                self._settled.append((path, journal.batch))
            self._batch.remove_leftovers(keep={batch for _, batch in self._settled})

    def delivered_keys(self) -> set[str]:
        return set(self._recovered)

    def open_message(self, key: str) -> MessageWriter:
        return _BatchWriter(self._batch, key)

    def commit(self) -> None:
        """Batch file synced, journal durable, then the append and the mbox's fsync. A
        failure rolls the mbox back to where the batch began (we hold its locks)."""
        if not self._batch.messages:
            return
        self._batch.sync()
        size = os.fstat(self._fd).st_size
        entries = tuple(
            Entry(key, size + start, size + end, digest)
            for key, start, end, digest in self._batch.messages
        )
        record = Journal(self.owner, self.path, *self._identity, size, self._batch.path, entries)
        atomic_write(self.journal, record.to_bytes())
        self._journaled = True
        try:
            for entry in entries:
                _copy(self._batch.fd, entry.start - size, self._fd, entry.start, entry.end)
            os.fsync(self._fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
                os.fsync(self._fd)
                self._remove_journals([(self.journal, self._batch.path)])
                self._journaled = False
            raise

    def batch_recorded(self) -> None:
        """The batch's (or the recovered batches') UIDs are in the state file: their
        journals are no longer needed; the batch file is emptied for the next batch.
        A failure here (73/74) stops the run with every message durable and recorded;
        a journal left behind names only whole messages, which the next run keeps
        (`mboxjournal.settle`), and a batch file no journal names it removes."""
        with file_errors(f"the mbox journal or batch file in {self.state_dir}"):
            self._drop_journals()

    def _drop_journals(self) -> None:
        if self._journaled:
            self._remove_journals([(self.journal, self._batch.path)])
            self._journaled = False
        if self._settled:
            self._remove_journals(self._settled)
            for _, batch in self._settled:
                if batch != self._batch.path:
                    batch.unlink(missing_ok=True)
            self._settled.clear()
        self._batch.clear()

    def _remove_journals(self, journals: list[tuple[Path, Path]]) -> None:
        for path, _ in journals:
            path.unlink(missing_ok=True)
        fsync_directory(self.state_dir)

    def close(self) -> None:
        """Let go of the batch file, the mbox and its locks. A close() that fails here
        changes nothing: every byte that matters was fsynced before (the batch file is
        removed all the same), so it does not turn a finished run into an error."""
        with contextlib.suppress(OSError):
            self._batch.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._lock.release()  # a dot-lock left behind is 74: other programs wait for it


def _settle_elsewhere(path: Path, journal: Journal, lock_wait: float) -> list[str]:
    """A journal of this account for another mbox file: settled on that file, under its
    locks, if it is still the same file (device and inode); never on any other."""
    gone = CantCreateError(
        f"a killed fetch of this account left an unfinished batch for {journal.mbox} "
        f"(journal {path}), but that file is gone or was replaced",
        hint=f"check the end of that mbox for a cut-off message, then remove {path}; "
        "the batch's unrecorded messages are then fetched again",
    )
    try:
        info = os.stat(journal.mbox)
    except OSError:
        raise gone from None
    if (info.st_dev, info.st_ino) != (journal.dev, journal.ino):
        raise gone
    lock = MboxLock(journal.mbox, wait=lock_wait)
    try:
        fd = os.open(journal.mbox, os.O_RDWR)
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (journal.dev, journal.ino):
                raise gone
            return settle(journal, path, fd)
        finally:
            os.close(fd)
    finally:
        lock.release()


def _copy(source: int, offset: int, target: int, start: int, end: int) -> None:
    """Copy bytes [offset, offset + end - start) of `source` to [start, end) of `target`."""
    os.lseek(target, start, os.SEEK_SET)
    done = 0
    while start + done < end:
        count = end - start - done
        try:
            sent = os.sendfile(target, source, offset + done, count)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            sent = os.write(target, os.pread(source, min(count, 1024 * 1024), offset + done))
        if sent == 0:
            raise OSError(errno.EIO, "the batch file ended early", None)
        done += sent


class _BatchFile:
    """The private file a batch is staged in, in the fetch state folder: created lazily
    with O_EXCL and without following symlinks, at an unpredictable name."""

    def __init__(self, state_dir: Path, owner: str) -> None:
        self.prefix = f".{owner}."
        self.state_dir = state_dir
        self.path = state_dir / f"{self.prefix}{secrets.token_hex(8)}.mbox-batch"
        self._fd: int | None = None
        self.end = 0
        self.messages: list[tuple[str, int, int, str]] = []  # key, start, end, sha256

    @property
    def fd(self) -> int:
        if self._fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            self._fd = os.open(self.path, flags, PRIVATE_FILE)
        return self._fd

    def sync(self) -> None:
        os.fsync(self.fd)

    def clear(self) -> None:
        """Empty for the next batch: its journal is gone, so its bytes are no longer needed."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        self.end = 0
        self.messages.clear()

    def truncate(self, size: int) -> None:
        """Cut an abandoned message; never grows the file."""
        os.ftruncate(self.fd, min(size, os.fstat(self.fd).st_size))

    def remove_leftovers(self, keep: set[Path]) -> None:
        """Batch files of this account that no journal names: a kill left them before
        any journal was written (we hold the account's lock: no run of ours is alive)."""
        for path in self.state_dir.glob(f"{self.prefix}*.mbox-batch"):
            if path not in keep and path != self.path:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            self.path.unlink(missing_ok=True)
        else:
            close_and_remove(fd, self.path)


class _BatchWriter:
    """One message into the batch file: its `From ` line, then its lines with LF ends and
    mboxrd quoting, buffered (256 KiB) and hashed as written. The `From ` line names the
    message's envelope sender (`fetch.sender`), so the message's first bytes wait in
    memory until its header section has passed (at most `sender.HEADER_LIMIT` bytes)."""

    FLUSH_AT = 256 * 1024

    def __init__(self, batch: _BatchFile, key: str) -> None:
        self.batch = batch
        self.key = key
        self.start = self.offset = batch.end
        self.digest = hashlib.sha256()
        self.buffer = bytearray()
        self.header: HeaderCapture | None = HeaderCapture()  # None once the From line is out
        self.pending = bytearray()  # what arrived while the header was still being read
        self.at_line_start = True
        self.lf = LfWriter(self._received)
        self.write = self.lf.write

    def _received(self, data: bytes) -> None:
        if self.header is None:
            self._quoted(data)
            return
        self.pending += data
        if self.header.feed(data):
            self._begin()

    def _begin(self) -> None:
        """The `From ` line, now that the header section is known, then what waited."""
        assert self.header is not None
        sender = envelope_sender(self.header.header)
        self.buffer += f"From {sender} {time.asctime(time.gmtime())}\n".encode()
        self.header = None
        pending, self.pending = bytes(self.pending), bytearray()
        self._quoted(pending)

    def _quoted(self, data: bytes) -> None:
        """mboxrd: one more ">" before `>*From ` at a line start."""
        if not data:
            return
        head = b""
        if not self.at_line_start:  # the first bytes continue a line already begun
            cut = data.find(b"\n") + 1 or len(data)
            head, data = data[:cut], data[cut:]
        self.buffer += head + _MBOXRD_FROM.sub(rb">\1", data)
        self.at_line_start = (head + data).endswith(b"\n")
        if len(self.buffer) >= self.FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        self.digest.update(self.buffer)
        # No view outlives the call, even when a write fails: a live view makes
        # `buffer.clear()` in abandon() raise BufferError, hiding the disk's error.
        done = 0
        with memoryview(self.buffer) as view:
            while done < len(view):
                done += os.pwrite(self.batch.fd, view[done:], self.offset + done)
        self.offset += done
        self.buffer.clear()

    def finish(self) -> None:
        self.lf.flush()
        if self.header is not None:  # a message without a body: all of it was header
            self._begin()
        self.buffer += b"\n" if self.at_line_start else b"\n\n"
        self._flush()
        self.batch.messages.append((self.key, self.start, self.offset, self.digest.hexdigest()))
        self.batch.end = self.offset

    def abandon(self) -> None:
        self.buffer.clear()
        self.pending.clear()
        self.batch.truncate(self.start)
