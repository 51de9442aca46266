"""The Maildir destination of `fetch`: each message written to `tmp/`, one sync of the
file system for the whole batch, renamed into `new/`, `new/` fsynced. The file name
carries a key derived from the mailbox and the message's UID, so a message delivered
just before a crash (and not yet recorded as delivered) is recognised on the next run
instead of being delivered twice.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from pathlib import Path

from mailcli.fetch.destination import BATCH_SIZE, MessageWriter, RecoveryHooks
from mailcli.fsutil import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    close_and_remove,
    fsync_directory,
    sync_filesystem,
    write_all,
    write_error,
)
from mailcli.pop3.multiline import LfWriter


def maildir_keys(root: Path) -> set[str]:
    """Keys of the messages present in new/ and cur/ (the MUA may have moved them)."""
    keys = set()
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError):  # a Preview of a Maildir not made yet
            for name in os.listdir(root / sub):
                parts = name.split(".", 2)
                if len(parts) == 3 and parts[1].startswith("U"):
                    keys.add(parts[1].split("_", 1)[0])
    return keys


class Maildir(RecoveryHooks):
    def __init__(self, root: Path, *, batch_size: int = BATCH_SIZE) -> None:
        self.root = root
        self.batch_size = batch_size
        self.description = f"maildir:{root}"
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self._batch: list[Path] = []
        self._count = 0
        self._pid = os.getpid()
        self._nonce = secrets.token_hex(3)  # a recycled PID in the same second stays unique
        try:
            # The Maildir itself 0700 too (mkdir's mode applies to the last part only).
            root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            for sub in ("tmp", "new", "cur"):
                (root / sub).mkdir(mode=PRIVATE_DIR, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, f"the Maildir {root}") from exc

    def open_message(self, key: str) -> MessageWriter:
        # time.KEY_PID_COUNTER.host: unique even when the same message is fetched again
        # in the same second (after a crash left its tmp file, or with --all).
        self._count += 1
        name = f"{int(time.time())}.{key}_{self._pid}_{self._nonce}{self._count}.{self._host}"
        return _MaildirWriter(self, self.root / "tmp" / name)

    def commit(self) -> None:
        """One sync for the batch's data, then the renames, then the folder's fsync."""
        if not self._batch:
            return
        sync_filesystem(self.root / "tmp")
        for path in self._batch:
            os.replace(path, self.root / "new" / path.name)
        fsync_directory(self.root / "new")
        self._batch.clear()

    def delivered_keys(self) -> set[str]:
        return maildir_keys(self.root)

    def close(self) -> None:
        for path in self._batch:  # written but never committed: not delivered
            path.unlink(missing_ok=True)
        self._batch.clear()


class _MaildirWriter:
    """Buffers up to 256 KiB and writes with os.write: a small message costs one open,
    one write and one close (a buffered file object adds an fstat and an lseek)."""

    FLUSH_AT = 256 * 1024

    def __init__(self, maildir: Maildir, path: Path) -> None:
        self.maildir = maildir
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd = os.open(path, flags, PRIVATE_FILE)
        self.buffer = bytearray()
        self.lf = LfWriter(self._buffered)
        self.write = self.lf.write

    def _buffered(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        write_all(self.fd, self.buffer)
        self.buffer.clear()

    def finish(self) -> None:
        self.lf.flush()
        self._flush()
        os.close(self.fd)
        self.maildir._batch.append(self.path)

    def abandon(self) -> None:
        close_and_remove(self.fd, self.path)
