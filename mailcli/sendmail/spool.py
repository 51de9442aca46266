"""The sendmail-mode queue: messages that could not be sent yet wait here, durably.

Layout under `$XDG_STATE_HOME/mailcli/queue/` (default `~/.local/state/mailcli/queue/`,
folders 0700, files 0600): `ID.eml` holds the message bytes as they will be sent,
`ID.json` the envelope, account and delivery attempts. An entry *is* its JSON: it is
in the queue exactly while `queue/ID.json` exists, and every step keeps the rule
"no JSON without its message", so a kill between any two system calls leaves each
entry whole in the queue or whole in `failed/`:

* enqueue: the message (flock'ed from its creation until the JSON exists), then the JSON;
* update: the JSON replaced atomically (temporary file, rename);
* remove: the JSON renamed to `ID.done`, then the message and the marker unlinked;
* move to `failed/`: the message hard-linked into `failed/`, the JSON renamed there
  (the one step that moves the entry), then the queue's link unlinked.

A full disk must never make a message go twice to a recipient that has it. Recording
that some recipients accepted (`narrow`) needs a new JSON; when that cannot be written
the entry moves to `failed/` instead (links and renames, which need no new data), with
the reason naming who still waits; a removal whose rename fails unlinks the JSON
directly. Each then re-raises the OSError, so the run stops with 74.

`recover()` (run by `queue run` under its lock) finishes what a killed process left:
a removal or a move half done is completed. A message without JSON and without a
marker is an incomplete enqueue (sendmail was stopped before it answered, so it never
promised delivery): it is not sent and not deleted, but moved to `failed/` with an
`ID.reason` file and reported. A damaged entry (unreadable JSON, wrong fields, message
missing) is quarantined the same way; the run goes on with the others.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from mailcli.config import state_home
from mailcli.errors import LocalIOError, NoInputError
from mailcli.fsutil import (
    FileLock,
    PartialFile,
    atomic_write,
    ensure_private_dir,
    fsync_directory,
    write_error,
)
from mailcli.sendmail.entry import (
    QueueEntry,
    dsn_fields,
    entry_json,
    parse_entry,
    why_unreadable,
)
from mailcli.smtp.envelope import Outgoing

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_INCOMPLETE = (
    "incomplete enqueue: sendmail was stopped before it answered, so the sender was never "
    "told the message was queued; not sent. Resend it by hand if it is wanted"
)


@dataclass(frozen=True)
class Damaged:
    """An entry that cannot be sent as it is, and why (quarantined by `recover`)."""

    id: str
    reason: str


class DamagedEntryError(LocalIOError):
    """The entry's files are not what `enqueue` wrote (74 if it ever reached a user)."""


def default_queue_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return state_home(environ) / "queue"


class Spool:
    """The queue folder: add, list, read, update, remove, fail, recover."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def failed_directory(self) -> Path:
        return self.directory / "failed"

    def lock(self) -> FileLock:
        """Held by `queue run` and `queue remove` (75 naming the holder)."""
        return FileLock(self.directory / ".lock", "queue run")

    def enqueue(self, outgoing: Outgoing, *, account: str | None, error: str) -> QueueEntry:
        """Keep a message whose delivery just failed with `error`: that was attempt 1."""
        now = time.time()
        entry = QueueEntry(
            id=time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4),
            created=now,
            account=account,
            envelope_from=outgoing.envelope.sender,
            recipients=list(outgoing.envelope.recipients),
            smtputf8=outgoing.smtputf8,
            attempts=1,
            last_error=error,
            last_attempt=now,
            **dsn_fields(outgoing.dsn),
        )
        try:
            ensure_private_dir(self.directory)
            self._write_entry(entry, outgoing)
        except OSError as exc:
            raise write_error(exc, f"to the queue {self.directory}") from exc
        return entry

    def _write_entry(self, entry: QueueEntry, outgoing: Outgoing) -> None:
        """The message, then the JSON. The message's flock, taken at its creation and
        held until the JSON exists, tells `recover` that this enqueue is alive."""
        message = self._path(entry.id, ".eml")
        partial = PartialFile(message)
        holder = os.dup(partial.fileno())  # the flock outlives the closed handle
        try:
            fcntl.flock(holder, fcntl.LOCK_EX)
            try:
                for chunk in outgoing.chunks():
                    partial.write(chunk)
            except BaseException:
                partial.discard()
                raise
            partial.commit()
            try:
                self._write_meta(entry)
            except OSError:
                message.unlink(missing_ok=True)  # not queued, and the caller says so
                raise
        finally:
            os.close(holder)

    def entries(self) -> list[QueueEntry]:
        """Complete, readable entries, oldest first (damaged ones: `damaged()`)."""
        return [entry for entry in self._scan() if isinstance(entry, QueueEntry)]

    def damaged(self) -> list[Damaged]:
        """Entries in the queue that `recover` would quarantine, and those it did."""
        found = [entry for entry in self._scan() if isinstance(entry, Damaged)]
        return found + self.quarantined()

    def quarantined(self) -> list[Damaged]:
        reasons = sorted(self.failed_directory.glob("*.reason"))
        return [Damaged(path.stem, _read_text(path)) for path in reasons]

    def message(self, entry: QueueEntry) -> Outgoing:
        try:
            with _open_nofollow(self._path(entry.id, ".eml")) as handle:
                data = handle.read()
        except OSError as exc:
            raise DamagedEntryError(f"cannot read its message: {exc.strerror}") from exc
        return Outgoing(entry.envelope, data, smtputf8=entry.smtputf8, dsn=entry.dsn)

    def update(self, entry: QueueEntry) -> None:
        self._write_meta(entry)

    def remove(self, entry_id: str) -> None:
        """Delete an entry: its JSON leaves first (renamed to a marker), so no JSON is
        ever left without its message; `recover` finishes a removal cut short."""
        meta = self._path(entry_id, ".json")
        if "/" in entry_id or entry_id.startswith(".") or not meta.exists():
            raise NoInputError(f"no queued message {entry_id!r}", hint="see `mailcli queue list`")
        marker = self._path(entry_id, ".done")
        try:
            os.replace(meta, marker)
        except OSError:
            meta.unlink()  # needs no space: the entry must not stay to be sent again
            self._path(entry_id, ".eml").unlink(missing_ok=True)
            raise
        self._path(entry_id, ".eml").unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        fsync_directory(self.directory)

    def move_to_failed(self, entry: QueueEntry, error: str) -> Path:
        entry.last_error = error
        try:
            self._write_meta(entry)
        finally:
            self._move_out(entry.id)  # refused all the same, with or without the reason
        return self.failed_directory / f"{entry.id}.eml"

    def narrow(self, entry: QueueEntry, delivered: list[str]) -> None:
        """Record that `delivered` have the message: the entry keeps `entry.recipients`.
        If that cannot be written, the entry moves to failed/ rather than stay as it was
        (the next run would send it again to `delivered`); the OSError is re-raised."""
        try:
            self._write_meta(entry)
        except OSError as exc:
            if self._recorded(entry):
                raise  # renamed in; only the folder's sync failed
            reason = (
                f"partly delivered: accepted by {', '.join(delivered)}; not yet delivered "
                f"to {', '.join(entry.recipients)} ({entry.last_error}). The queue could not "
                f"record this ({exc.strerror}), so the entry was moved here instead of "
                "risking a second copy: resend it to those recipients only"
            )
            with suppress(OSError):
                ensure_private_dir(self.failed_directory)
                atomic_write(self.failed_directory / f"{entry.id}.reason", reason.encode())
            self._move_out(entry.id)
            raise

    def _recorded(self, entry: QueueEntry) -> bool:
        try:
            return parse_entry(entry.id, _read_text(self._path(entry.id, ".json"))) == entry
        except (OSError, ValueError):
            return False

    def keep_refused(self, entry: QueueEntry, recipients: list[str], reason: str) -> str:
        """A copy of the entry for the recipients refused permanently, kept in failed/
        (message linked, then its JSON) under its own id; never sent. Returns the id."""
        kept = replace(entry, id=f"{entry.id}-refused-{entry.attempts + 1}", recipients=recipients)
        kept.last_error = reason
        ensure_private_dir(self.failed_directory)
        message = self.failed_directory / f"{kept.id}.eml"
        message.unlink(missing_ok=True)  # from an earlier, interrupted try
        os.link(self._path(entry.id, ".eml"), message, follow_symlinks=False)
        data = entry_json(kept)
        atomic_write(self.failed_directory / f"{kept.id}.json", data)
        return kept.id

    def quarantine(self, entry_id: str, reason: str) -> None:
        """Move a damaged entry (whatever of it exists) to failed/, the reason beside it."""
        ensure_private_dir(self.failed_directory)
        atomic_write(self.failed_directory / f"{entry_id}.reason", (reason + "\n").encode())
        self._move_out(entry_id)

    def _move_out(self, entry_id: str) -> None:
        """Message linked into failed/, then the JSON renamed there (the entry moves in
        that one step), then the queue's link removed: whole here or whole there."""
        ensure_private_dir(self.failed_directory)
        message, kept = self._path(entry_id, ".eml"), self.failed_directory / f"{entry_id}.eml"
        if message.exists():
            kept.unlink(missing_ok=True)  # a link from an earlier, interrupted move
            os.link(message, kept, follow_symlinks=False)
            fsync_directory(self.failed_directory)
        meta = self._path(entry_id, ".json")
        if meta.exists():
            os.replace(meta, self.failed_directory / meta.name)
            fsync_directory(self.failed_directory)
        message.unlink(missing_ok=True)
        fsync_directory(self.directory)

    def recover(self) -> tuple[list[Damaged], list[QueueEntry]]:
        """Finish interrupted removals and moves; quarantine damaged entries and
        incomplete enqueues. Returns (quarantined, entries whose move to failed/ this
        finished). Call with the run lock held."""
        quarantined, finished = [], []
        for orphan in self._orphan_messages():
            outcome = self._settle_orphan(orphan)
            if isinstance(outcome, Damaged):
                quarantined.append(outcome)
            elif outcome is not None:
                finished.append(outcome)
        for item in self._scan():
            if isinstance(item, Damaged):
                self.quarantine(item.id, item.reason)
                quarantined.append(item)
        return quarantined, finished

    def _settle_orphan(self, entry_id: str) -> Damaged | QueueEntry | None:
        message = self._path(entry_id, ".eml")
        marker = self._path(entry_id, ".done")
        if marker.exists():  # a removal cut short: the entry was already gone
            message.unlink(missing_ok=True)
            marker.unlink()
            fsync_directory(self.directory)
            return None
        moved = self.failed_directory / f"{entry_id}.json"
        if moved.exists():  # a move to failed/ cut short after its JSON moved
            self._move_out(entry_id)
            try:
                return parse_entry(entry_id, _read_text(moved))
            except (OSError, ValueError):
                return None  # in failed/ whole, as it was; nothing to report about it
        with _enqueue_lock(message) as settled:
            # Seen without its JSON, but an enqueue may have written it and let go of the
            # lock since: only a JSON still missing under the lock is a dead enqueue.
            if not settled or self._path(entry_id, ".json").exists():
                return None
            self.quarantine(entry_id, _INCOMPLETE)
        return Damaged(entry_id, _INCOMPLETE)

    def _orphan_messages(self) -> list[str]:
        return [
            path.stem for path in self._names(".eml") if not self._path(path.stem, ".json").exists()
        ]

    def _scan(self) -> list[QueueEntry | Damaged]:
        found: list[QueueEntry | Damaged] = []
        for meta in self._names(".json"):
            try:
                entry = parse_entry(meta.stem, _read_text(meta))
                if not self._path(meta.stem, ".eml").is_file():
                    raise DamagedEntryError(f"its message {meta.stem}.eml is missing")
                found.append(entry)
            except (OSError, ValueError, DamagedEntryError) as exc:
                found.append(Damaged(meta.stem, f"damaged queue entry: {why_unreadable(exc)}"))
        return sorted(found, key=lambda item: getattr(item, "created", 0.0))

    def _names(self, suffix: str) -> list[Path]:
        if not self.directory.is_dir():
            return []
        paths = self.directory.glob("*" + suffix)
        return sorted(path for path in paths if not path.name.startswith("."))

    def _path(self, entry_id: str, suffix: str) -> Path:
        return self.directory / f"{entry_id}{suffix}"

    def _write_meta(self, entry: QueueEntry) -> None:
        data = entry_json(entry)
        atomic_write(self._path(entry.id, ".json"), data)


def _read_text(path: Path) -> str:
    with _open_nofollow(path) as handle:
        return handle.read().decode("utf-8")


@contextmanager
def _open_nofollow(path: Path) -> Iterator[BinaryIO]:
    handle = os.fdopen(os.open(path, _READ_FLAGS), "rb")
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def _enqueue_lock(message: Path) -> Iterator[bool]:
    """The message's flock, held for the block: yields False while a live `enqueue` holds
    it (it has yet to write the JSON) or the message is gone; True once no enqueue can
    still be writing this entry (it finished, or it was killed)."""
    try:
        fd = os.open(message, _READ_FLAGS)
    except FileNotFoundError:
        yield False  # gone meanwhile: nothing to settle
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)
