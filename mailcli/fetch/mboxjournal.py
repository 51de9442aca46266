"""The journal of an mbox batch, and the recovery that settles it after a crash.

A batch is appended to an mbox only after a journal describing it is durable (see
`fetch.mbox`). The journal lives in the fetch state folder, named after the mbox file's
identity (`mbox-DEV-INO.journal`), so whoever is about to write that file finds it. It
names its owner (the fetch state it belongs to), the mbox's path, device and inode, the
size S the mbox had before the batch, the private batch file holding the batch's bytes,
and for each message its key, its [start, end) offsets in the mbox and the sha256 of its
bytes.

Recovery (`settle`) removes only bytes it can prove this batch wrote into this file:
- a message whose bytes at [start, end) hash as journaled was delivered: it is kept,
  and its key reported so that fetch records its UID instead of fetching it again;
- when every message is whole, the batch's append was complete: bytes after it are
  never ours, and nothing is touched (however the batch file changed since);
- after the last such message (at E), bytes that are exactly a prefix of the batch's
  remaining bytes are ours, cut short by the crash: the file is truncated back to E;
- bytes that share nothing with our next message beyond its `From ` line were written by
  someone else after the crash (local delivery): every byte is kept;
- ours partly, then someone else's: nothing is touched, and the error says where.
Settling twice is harmless: the second time nothing is left to cut.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailcli.errors import CantCreateError, ConfigError

_VERSION = 1
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One message of a batch: where it is in the mbox, and what it must hash to."""

    key: str
    start: int
    end: int
    sha256: str


@dataclass(frozen=True)
class Journal:
    owner: str
    mbox: Path
    dev: int
    ino: int
    size: int  # the mbox's size before the batch
    batch: Path  # the private file the batch's bytes were staged in
    entries: tuple[Entry, ...]

    def to_bytes(self) -> bytes:
        record: dict[str, Any] = {
            "version": _VERSION,
            "owner": self.owner,
            "mbox": os.fsdecode(self.mbox),
            "dev": self.dev,
            "ino": self.ino,
            "size": self.size,
            "batch": self.batch.name,
            "messages": [[e.key, e.start, e.end, e.sha256] for e in self.entries],
        }
        return (json.dumps(record) + "\n").encode("ascii")


def journal_path(state_dir: Path, dev: int, ino: int) -> Path:
    return state_dir / f"mbox-{dev}-{ino}.journal"


def read_journal(path: Path) -> Journal:
    try:
        record = json.loads(path.read_bytes())
        if record["version"] != _VERSION:
            raise ValueError(f"version {record['version']}")
        entries = tuple(Entry(str(k), int(s), int(e), str(h)) for k, s, e, h in record["messages"])
        return Journal(
            owner=str(record["owner"]),
            mbox=Path(record["mbox"]),
            dev=int(record["dev"]),
            ino=int(record["ino"]),
            size=int(record["size"]),
            batch=path.parent / str(record["batch"]),
            entries=entries,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the mbox journal {path} is unreadable ({exc}); refusing to guess which "
            "bytes of the mbox a killed fetch wrote",
            hint="check the end of that mbox for a cut-off message, then remove the journal",
        ) from exc


def owned_journals(state_dir: Path, owner: str) -> list[tuple[Path, Journal]]:
    """The journals this fetch state left behind, whichever mbox they are for."""
    found = []
    for path in sorted(state_dir.glob("mbox-*.journal")):
        journal = read_journal(path)
        if journal.owner == owner:
            found.append((path, journal))
    return found


def settle(journal: Journal, path: Path, fd: int) -> list[str]:
    """Recover one batch on its own mbox (`fd`, opened read-write and locked): the keys
    of the messages found whole. Truncates only bytes proven ours (module docstring)."""
    size = os.fstat(fd).st_size
    delivered = []
    end = journal.size
    for entry in journal.entries:
        if entry.start != end or entry.end > size or _hash(fd, entry) != entry.sha256:
            break
        delivered.append(entry.key)
        end = entry.end
    # Every message whole: the batch wrote exactly [size, end), so whatever follows is
    # not its bytes (another program's mail; a journal whose removal failed after the
    # batch was recorded, its batch file since reused or removed). Nothing to cut.
    if size > end and len(delivered) < len(journal.entries):
        _cut_what_is_ours(journal, path, fd, end, size)
    return delivered


def _hash(fd: int, entry: Entry) -> str:
    digest = hashlib.sha256()
    for offset in range(entry.start, entry.end, _CHUNK):
        digest.update(os.pread(fd, min(_CHUNK, entry.end - offset), offset))
    return digest.hexdigest()


def _cut_what_is_ours(journal: Journal, path: Path, fd: int, end: int, size: int) -> None:
    """Bytes [end, size) follow the last whole message of the batch: cut them if they are
    the beginning of what the batch was writing, keep them if they are someone else's."""
    try:
        batch = os.open(journal.batch, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        batch = None
    try:
        at = end - journal.size  # where the rest of the batch begins in the batch file
        common = _common_prefix(fd, end, size, batch, at) if batch is not None else 0
        if batch is not None and common == size - end:
            os.ftruncate(fd, end)
            os.fsync(fd)
            return
        if batch is not None and common <= _from_line_length(batch, at):
            return  # nothing of ours there: another program's mail, kept
    finally:
        if batch is not None:
            os.close(batch)
    raise CantCreateError(
        f"{journal.mbox}: bytes {end} to {size} (offsets) are partly a message a killed "
        "fetch was writing and partly not provably ours; the mbox is left untouched",
        hint=f"remove the cut-off message that starts at offset {end} with a mail program, "
        f"then remove {path}; fetch then gets that message again",
    )


def _common_prefix(fd: int, start: int, stop: int, batch: int, at: int) -> int:
    """How many bytes of the mbox from `start` equal the batch file's from `at`."""
    same = 0
    while start + same < stop:
        want = min(_CHUNK, stop - start - same)
        ours = os.pread(batch, want, at + same)
        theirs = os.pread(fd, len(ours), start + same)
        if not ours or ours != theirs:
            return same + _first_difference(ours, theirs)
        same += len(ours)
    return same


def _first_difference(a: bytes, b: bytes) -> int:
    length = min(len(a), len(b))
    return next((i for i in range(length) if a[i] != b[i]), length)


def _from_line_length(batch: int, at: int) -> int:
    head = os.pread(batch, 4096, at)
    return head.find(b"\n") + 1 or len(head)
