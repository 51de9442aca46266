"""Where fetched mail goes: Maildir, mbox, or an MDA command.

Every destination receives a message as a stream of blocks (never whole), converts the
server's CRLF line ends to LF (what Maildir and mbox readers expect), and makes a batch
of messages durable in one `commit()`:

- **Maildir**: each message is written to `tmp/`; `commit()` syncs the file system once
  for the whole batch, renames the files into `new/`, then fsyncs `new/`. The file name
  carries a key derived from the message's UID, so a message delivered just before a
  crash (and not yet recorded as delivered) is recognised on the next run instead of
  being delivered twice.
- **mbox**: locked as the `mailbox` module locks it (dot-lock and fcntl), appended with
  mboxrd quoting (`>*From ` lines get one more `>`), fsynced in `commit()`. A journal
  written before each batch lets the next run cut off a batch that a crash left
  appended but unrecorded.
- **MDA**: the command gets the message on stdin; exit 0 means delivered. Its batch is
  one message: the MDA's own delivery is the commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mailcli.errors import CantCreateError, ConfigError, TempFailError
from mailcli.fsutil import PRIVATE_DIR, PRIVATE_FILE, fsync_directory, sync_filesystem

_MBOXRD_FROM = re.compile(rb"^(>*From )", re.MULTILINE)


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


class _NoJournal:
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
    """A stable, file-name-safe key for one message of one server."""
    return "U" + hashlib.sha256(f"{server}\0{uid}".encode()).hexdigest()[:24]


def open_destination(spec: str, *, journal: Path) -> Destination:
    """`maildir:PATH`, `mbox:PATH` or `mda:COMMAND` (a bare path means Maildir)."""
    kind, colon, target = spec.partition(":")
    if not colon:
        kind, target = "maildir", spec
    if kind == "maildir":
        return Maildir(Path(os.path.expanduser(target)))
    if kind == "mbox":
        return Mbox(Path(os.path.expanduser(target)), journal=journal)
    if kind == "mda":
        return Mda(target)
    raise ConfigError(f"unknown destination {spec!r}: use maildir:PATH, mbox:PATH or mda:CMD")


class LfWriter:
    """CRLF -> LF across block boundaries (a CR at a block's end waits for the next)."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._carry = b""

    def write(self, data: bytes) -> None:
        data = self._carry + data
        self._carry = b"\r" if data.endswith(b"\r") else b""
        self._write(data[: len(data) - len(self._carry)].replace(b"\r\n", b"\n"))

    def flush(self) -> None:
        if self._carry:
            self._write(self._carry)
            self._carry = b""


class Maildir(_NoJournal):
    batch_size = 256

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"maildir:{root}"
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self._batch: list[Path] = []
        self._count = 0
        self._pid = os.getpid()
        try:
            # The Maildir itself 0700 too (mkdir's mode applies to the last part only).
            root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            for sub in ("tmp", "new", "cur"):
                (root / sub).mkdir(mode=PRIVATE_DIR, exist_ok=True)
        except OSError as exc:
            raise CantCreateError(f"cannot create the Maildir {root}: {exc.strerror}") from exc

    def open_message(self, key: str) -> MessageWriter:
        # time.KEY_PID_COUNTER.host: unique even when the same message is fetched again
        # in the same second (after a crash left its tmp file, or with --all).
        self._count += 1
        name = f"{int(time.time())}.{key}_{self._pid}_{self._count}.{self._host}"
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
        """Keys of the messages present in new/ and cur/ (the MUA may have moved them)."""
        keys = set()
        for sub in ("new", "cur"):
            for name in os.listdir(self.root / sub):
                parts = name.split(".", 2)
                if len(parts) == 3 and parts[1].startswith("U"):
                    keys.add(parts[1].split("_", 1)[0])
        return keys

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
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
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


class Mbox(_NoJournal):
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
            raise CantCreateError(f"cannot open {path}: {exc.strerror}") from exc
        self._lock = MboxLock(path)
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the whole run

    def begin_batch(self, uids: list[str]) -> None:
        """Journal first: where the mbox ends now, and which UIDs are about to follow."""
        from mailcli.fsutil import atomic_write

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
        if text.isdigit():
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


class Mda(_NoJournal):
    """Runs COMMAND per message (through the shell), the message on its stdin."""

    batch_size = 1

    def __init__(self, command: str) -> None:
        if not command.strip():
            raise ConfigError("mda: needs a command, e.g. mda:'procmail -d alice'")
        self.command = command
        self.description = f"mda:{command}"

    def open_message(self, key: str) -> MessageWriter:
        return _MdaWriter(self.command)

    def commit(self) -> None:
        """The MDA delivered (exit 0) before `finish` returned: nothing left to do."""

    def close(self) -> None:
        pass


class _MdaWriter:
    def __init__(self, command: str) -> None:
        self.command = command
        self.process = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE)
        assert self.process.stdin is not None
        self.stdin = self.process.stdin
        self.lf = LfWriter(self._write)
        self.write = self.lf.write

    def _write(self, data: bytes) -> None:
        # The MDA may stop reading early; its exit status tells the story.
        with contextlib.suppress(BrokenPipeError):
            self.stdin.write(data)

    def finish(self) -> None:
        self.lf.flush()
        with contextlib.suppress(BrokenPipeError):
            self.stdin.close()
        status = self.process.wait()
        if status != 0:
            raise CantCreateError(
                f"the MDA exited with status {status}: message not delivered, kept on "
                f"the server (`{self.command}`)"
            )

    def abandon(self) -> None:
        self.process.kill()  # before closing stdin: a half message must not be delivered
        self.process.wait()
        with contextlib.suppress(BrokenPipeError):
            self.stdin.close()
