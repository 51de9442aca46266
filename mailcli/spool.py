"""The sendmail-mode queue: messages that could not be sent yet wait here, durably.

Layout under `$XDG_STATE_HOME/mailcli/queue/` (default `~/.local/state/mailcli/queue/`,
folders 0700, files 0600): `ID.eml` holds the message bytes as they will be sent,
`ID.json` the envelope, account and delivery attempts. The message is written first,
then its JSON, each atomically (write, fsync, rename, fsync the folder): an entry
exists once its JSON exists, whole. Permanently refused entries move to `failed/`.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from mailcli.config import state_home
from mailcli.envelope import Envelope, Outgoing
from mailcli.errors import NoInputError
from mailcli.fsutil import atomic_write, ensure_private_dir, fsync_directory, write_error
from mailcli.lock import FileLock


@dataclass
class QueueEntry:
    """One waiting message's metadata (its bytes are in ID.eml)."""

    id: str
    created: float
    account: str | None
    envelope_from: str
    recipients: list[str]
    smtputf8: bool = False
    attempts: int = 0
    last_error: str | None = None
    last_attempt: float | None = None

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.envelope_from, tuple(self.recipients))


def default_queue_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return state_home(environ) / "queue"


class Spool:
    """The queue folder: add, list, read, update, remove, fail."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def failed_directory(self) -> Path:
        return self.directory / "failed"

    def lock(self) -> FileLock:
        return FileLock(self.directory / ".lock", "queue run")

    def enqueue(self, outgoing: Outgoing, *, account: str | None, error: str) -> QueueEntry:
        entry = QueueEntry(
            id=time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4),
            created=time.time(),
            account=account,
            envelope_from=outgoing.envelope.sender,
            recipients=list(outgoing.envelope.recipients),
            smtputf8=outgoing.smtputf8,
            last_error=error,
        )
        try:
            ensure_private_dir(self.directory)
            atomic_write(self.directory / f"{entry.id}.eml", b"".join(outgoing.chunks()))
            self._write_meta(entry)
        except OSError as exc:
            raise write_error(exc, f"to the queue {self.directory}") from exc
        return entry

    def entries(self) -> list[QueueEntry]:
        """Complete entries, oldest first; an unreadable JSON file is skipped."""
        found = []
        for meta in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []:
            try:
                found.append(QueueEntry(**json.loads(meta.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda entry: entry.created)

    def message(self, entry: QueueEntry) -> Outgoing:
        data = (self.directory / f"{entry.id}.eml").read_bytes()
        return Outgoing(entry.envelope, data, smtputf8=entry.smtputf8)

    def update(self, entry: QueueEntry) -> None:
        self._write_meta(entry)

    def remove(self, entry_id: str) -> None:
        """Delete an entry: its JSON first, so a crash never leaves a half entry listed."""
        meta = self.directory / f"{entry_id}.json"
        if "/" in entry_id or not meta.exists():
            raise NoInputError(f"no queued message {entry_id!r}", hint="see `mailcli queue list`")
        meta.unlink()
        (self.directory / f"{entry_id}.eml").unlink(missing_ok=True)
        fsync_directory(self.directory)

    def move_to_failed(self, entry: QueueEntry, error: str) -> Path:
        entry.last_error = error
        self._write_meta(entry)
        ensure_private_dir(self.failed_directory)
        for suffix in (".eml", ".json"):
            name = entry.id + suffix
            os.replace(self.directory / name, self.failed_directory / name)
        fsync_directory(self.failed_directory)
        fsync_directory(self.directory)
        return self.failed_directory / f"{entry.id}.eml"

    def _write_meta(self, entry: QueueEntry) -> None:
        data = json.dumps(asdict(entry), indent=1, ensure_ascii=False).encode("utf-8")
        atomic_write(self.directory / f"{entry.id}.json", data)
