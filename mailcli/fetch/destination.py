"""Where fetched mail goes: what every destination promises, and `--to` parsed into one.

Every destination receives a message as a stream of blocks (never whole), converts the
server's CRLF line ends to LF (what Maildir and mbox readers expect), and makes a batch
of messages durable in one `commit()`:

- **Maildir** (`maildir`): each message is written to `tmp/`; `commit()` syncs the file system once
  for the whole batch, renames the files into `new/`, then fsyncs `new/`. The file name
  carries a key derived from the message's UID, so a message delivered just before a
  crash (and not yet recorded as delivered) is recognised on the next run instead of
  being delivered twice.
- **mbox** (`mbox`): locked as the `mailbox` module locks it (dot-lock and fcntl,
  waiting for another program that holds them up to `--timeout`: `mboxlock`);
  a batch is staged in a private file, journaled (`mboxjournal`), then appended with
  mboxrd quoting (`>*From ` lines get one more `>`) and fsynced in `commit()`; the next
  run settles a journal a crash left, removing only bytes it can prove it wrote.
- **MDA** (`mda`): the message is first written to an unnamed private file (O_TMPFILE, mode
  0600, in the fetch state folder); only when it is complete does the command start,
  with that file as its stdin; exit 0 means delivered. A kill before that hands the MDA
  nothing; a kill while it runs lets it read the whole message. Its batch is one
  message: the MDA's own delivery is the commit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from mailcli.errors import ConfigError


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


def message_key(server: str, uid: str, size: int | None = None) -> str:
    """A stable, file-name-safe key for one message of one mailbox (`server` is
    `fetch.state.mailbox_identity`); the UID's exact bytes count (surrogateescape), and
    the size LIST gave, so a reused UID does not make another message's key."""
    text = f"{server}\0{uid}" if size is None else f"{server}\0{uid}\0{size}"
    data = text.encode("utf-8", "surrogateescape")
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


def open_destination(
    spec: str, *, journal: Path, read_only: bool = False, lock_wait: float = 0.0
) -> Destination:
    """`maildir:PATH`, `mbox:PATH` or `mda:COMMAND` (a bare path means Maildir);
    `read_only` (a dry run): a `Preview` that creates and writes nothing; `lock_wait`:
    how long an mbox waits for another program's locks."""
    kind, colon, target = spec.partition(":")
    if not colon:
        kind, target = "maildir", spec
    if read_only and kind in ("maildir", "mbox", "mda"):
        return Preview(kind, target)
    if kind == "maildir":
        from mailcli.fetch.maildir import Maildir

        size = fetch_batch_size(Maildir.batch_size)  # before anything is created
        maildir = Maildir(Path(os.path.expanduser(target)))
        maildir.batch_size = size
        return maildir
    if kind == "mbox":
        from mailcli.fetch.mbox import Mbox

        size = fetch_batch_size(Mbox.batch_size)  # before the mbox is locked
        mbox = Mbox(Path(os.path.expanduser(target)), journal=journal, lock_wait=lock_wait)
        mbox.batch_size = size
        return mbox
    if kind == "mda":
        from mailcli.fetch.mda import Mda

        return Mda(target, spool=journal.parent)  # the fetch state folder
    raise ConfigError(f"unknown destination {spec!r}: use maildir:PATH, mbox:PATH or mda:CMD")


class Preview(NoJournal):
    """What `fetch --dry-run` sees of a destination: it only reads (a Maildir's keys,
    when the folder exists); it creates, locks, recovers and writes nothing."""

    batch_size = 256

    def __init__(self, kind: str, target: str) -> None:
        where = target if kind == "mda" else os.path.expanduser(target)
        self.description = f"{kind}:{where}"
        self.maildir = Path(where) if kind == "maildir" else None

    def delivered_keys(self) -> set[str]:
        from mailcli.fetch.maildir import maildir_keys

        return maildir_keys(self.maildir) if self.maildir else set()

    def open_message(self, key: str) -> MessageWriter:
        raise AssertionError("a dry run delivers nothing")

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass
