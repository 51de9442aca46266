"""Where fetched mail goes: Maildir, mbox, or an MDA command.

Every destination receives a message as a stream of blocks (never whole), converts the
server's CRLF line ends to LF (what Maildir and mbox readers expect), and makes a batch
of messages durable in one `commit()`:

- **Maildir**: each message is written to `tmp/`; `commit()` syncs the file system once
  for the whole batch, renames the files into `new/`, then fsyncs `new/`. The file name
  carries a key derived from the message's UID, so a message delivered just before a
  crash (and not yet recorded as delivered) is recognised on the next run instead of
  being delivered twice.
- **mbox** (`mboxstore`): locked as the `mailbox` module locks it (dot-lock and fcntl);
  a batch is staged in a private file, journaled (`mboxjournal`), then appended with
  mboxrd quoting (`>*From ` lines get one more `>`) and fsynced in `commit()`; the next
  run settles a journal a crash left, removing only bytes it can prove it wrote.
- **MDA**: the message is first written to an unnamed private file (O_TMPFILE, mode
  0600, in the fetch state folder); only when it is complete does the command start,
  with that file as its stdin; exit 0 means delivered. A kill before that hands the MDA
  nothing; a kill while it runs lets it read the whole message. Its batch is one
  message: the MDA's own delivery is the commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from mailcli.errors import CantCreateError, ConfigError
from mailcli.fsutil import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    fsync_directory,
    sync_filesystem,
    write_error,
)
from mailcli.pop3.multiline import LfWriter


class MessageWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def abandon(self) -> None: ...


class Destination(Protocol):
    """A place to deliver to; see the module docstring for each kind's guarantees."""

    batch_size: int
    description: str

    def begin_batch(self, uids: list[str]) -> None: ...

    def open_message(self, key: str) -> MessageWriter: ...

    def commit(self) -> None: ...

    def batch_recorded(self) -> None: ...

    def recover(self, is_recorded: Callable[[str], bool]) -> None: ...

    def delivered_keys(self) -> set[str]: ...

    def close(self) -> None: ...


class NoJournal:
    """Destinations whose files or MDA runs need no journal (the Maildir key, the MDA's
    own delivery stand in for it)."""

    def begin_batch(self, uids: list[str]) -> None:
        pass

    def batch_recorded(self) -> None:
        pass

    def recover(self, is_recorded: Callable[[str], bool]) -> None:
        pass

    def delivered_keys(self) -> set[str]:
        return set()


def message_key(server: str, uid: str) -> str:
    """A stable, file-name-safe key for one message of one mailbox (`server` is
    `uidstate.mailbox_identity`); the UID's exact bytes count (surrogateescape)."""
    data = f"{server}\0{uid}".encode("utf-8", "surrogateescape")
    return "U" + hashlib.sha256(data).hexdigest()[:24]


FETCH_BATCH_SETTING = "MAILCLI_FETCH_BATCH"


def fetch_batch_size(default: int, environ: Mapping[str, str] = os.environ) -> int:
    """Messages per batch (one sync and one state record each) for Maildir and mbox:
    `MAILCLI_FETCH_BATCH` when set, else `default`. Smaller batches lose less work to a
    crash and cost more syncs; an MDA's batch is always one message."""
    text = environ.get(FETCH_BATCH_SETTING, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigError(f"{FETCH_BATCH_SETTING}={text!r}: expected a whole number of at least 1")
    return int(text)


def open_destination(spec: str, *, journal: Path, read_only: bool = False) -> Destination:
    """`maildir:PATH`, `mbox:PATH` or `mda:COMMAND` (a bare path means Maildir);
    `read_only` (a dry run): a `Preview` that creates and writes nothing."""
    kind, colon, target = spec.partition(":")
    if not colon:
        kind, target = "maildir", spec
    if read_only and kind in ("maildir", "mbox", "mda"):
        return Preview(kind, target)
    if kind == "maildir":
        size = fetch_batch_size(Maildir.batch_size)  # before anything is created
        maildir = Maildir(Path(os.path.expanduser(target)))
        maildir.batch_size = size
        return maildir
    if kind == "mbox":
        from mailcli.fetch.mbox import Mbox

        size = fetch_batch_size(Mbox.batch_size)  # before the mbox is locked
        mbox = Mbox(Path(os.path.expanduser(target)), journal=journal)
        mbox.batch_size = size
        return mbox
    if kind == "mda":
        return Mda(target, spool=journal.parent)  # the fetch state folder
    raise ConfigError(f"unknown destination {spec!r}: use maildir:PATH, mbox:PATH or mda:CMD")


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


class Preview(NoJournal):
    """What `fetch --dry-run` sees of a destination: it only reads (a Maildir's keys,
    when the folder exists); it creates, locks, recovers and writes nothing."""

    batch_size = 256

    def __init__(self, kind: str, target: str) -> None:
        where = target if kind == "mda" else os.path.expanduser(target)
        self.description = f"{kind}:{where}"
        self.maildir = Path(where) if kind == "maildir" else None

    def delivered_keys(self) -> set[str]:
        return maildir_keys(self.maildir) if self.maildir else set()

    def open_message(self, key: str) -> MessageWriter:
        raise AssertionError("a dry run delivers nothing")

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class Maildir(NoJournal):
    batch_size = 256

    def __init__(self, root: Path) -> None:
        self.root = root
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
        view = memoryview(self.buffer)
        while view:
            view = view[os.write(self.fd, view) :]
        view.release()
        self.buffer.clear()

    def finish(self) -> None:
        self.lf.flush()
        self._flush()
        os.close(self.fd)
        self.maildir._batch.append(self.path)

    def abandon(self) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)


class Mda(NoJournal):
    """Runs COMMAND per message (through the shell), the whole message on its stdin."""

    batch_size = 1

    def __init__(self, command: str, *, spool: Path) -> None:
        if not command.strip():
            raise ConfigError("mda: needs a command, e.g. mda:'procmail -d alice'")
        self.command = command
        self.spool = spool
        self.description = f"mda:{command}"

    def open_message(self, key: str) -> MessageWriter:
        return _MdaWriter(self.command, self.spool)

    def commit(self) -> None:
        """The MDA delivered (exit 0) before `finish` returned: nothing left to do."""

    def close(self) -> None:
        pass


class _MdaWriter:
    """Spools the message into an unnamed private file and starts the MDA on it only
    once the message is complete, so a mailcli killed mid-message hands the MDA nothing
    (a pipe would have shown it a normal end of input, and it would have delivered the
    part). The file is O_TMPFILE in the fetch state folder: on disk under HOME rather
    than in memory (a 100 MiB message) or a RAM-backed /tmp, and without a name there
    is nothing to clean up after a crash."""

    BUFFER = 256 * 1024  # a message under 256 KiB costs one write(2)

    def __init__(self, command: str, spool: Path) -> None:
        self.command = command
        # Mode 0600, not inheritable; closed by finish() or abandon(), not a with block.
        self.file = tempfile.TemporaryFile(dir=spool, buffering=self.BUFFER)  # noqa: SIM115
        self.lf = LfWriter(self.file.write)
        self.write = self.lf.write

    def finish(self) -> None:
        try:
            self.lf.flush()
            self.file.flush()
            self.file.seek(0)
            status = self._deliver()
        finally:
            self.file.close()
        if status != 0:
            raise CantCreateError(
                f"the MDA exited with status {status}: message not delivered, kept on "
                f"the server (`{self.command}`)"
            )

    def _deliver(self) -> int:
        from mailcli.auth.childenv import child_environment

        process = subprocess.Popen(
            self.command, shell=True, stdin=self.file, env=child_environment()
        )
        try:
            return process.wait()
        except BaseException:
            # Interrupted (SIGINT/SIGTERM): the MDA holds the whole message; cutting it
            # short could leave part of it in a mailbox. It finishes; the message stays
            # unrecorded, so the next run may deliver it again (the documented window).
            process.wait()
            raise

    def abandon(self) -> None:
        self.file.close()  # the MDA never started: nothing was delivered
