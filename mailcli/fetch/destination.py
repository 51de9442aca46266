"""Where fetched mail goes: what every destination promises (`fetch.open` parses `--to`).

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
from collections.abc import Callable
from typing import Protocol

from mailcli.errors import RejectedError

# Messages per batch (one sync, one state record) for Maildir and mbox, unless
# MAILCLI_FETCH_BATCH says otherwise (`fetch.open`); an MDA's batch is one message.
BATCH_SIZE = 256


class MessageWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def abandon(self) -> None: ...


class Destination(Protocol):
    """A place to deliver to; see the module docstring for each kind's guarantees."""

    batch_size: int
    description: str

    def open_message(self, key: str) -> MessageWriter: ...

    def commit(self) -> None: ...

    def batch_recorded(self) -> None: ...

    def recover(self, is_recorded: Callable[[str], bool]) -> None: ...

    def delivered_keys(self) -> set[str]: ...

    def close(self) -> None: ...


class RecoveryHooks:
    """A destination's steps around a crash, as one with nothing to recover takes them
    (the MDA: its own delivery is the commit): nothing to settle (`recover`), nothing
    found delivered (`delivered_keys`), nothing to drop once a batch is recorded
    (`batch_recorded`). Maildir and the dry run's Preview name the keys in the folder;
    Mbox settles, reports and drops its journal (`mboxjournal`)."""

    def batch_recorded(self) -> None:
        pass

    def recover(self, is_recorded: Callable[[str], bool]) -> None:
        pass

    def delivered_keys(self) -> set[str]:
        return set()


def message_key(server: str, uid: str, size: int | None = None) -> str:
    """A stable, file-name-safe key for one message of one mailbox (`server` is
    `fetch.mailbox.Mailbox.identity`); the UID's exact bytes count (surrogateescape), and
    the size LIST gave, so a reused UID does not make another message's key."""
    text = f"{server}\0{uid}" if size is None else f"{server}\0{uid}\0{size}"
    data = text.encode("utf-8", "surrogateescape")
    return "U" + hashlib.sha256(data).hexdigest()[:24]


class MessageRefused(RejectedError):
    """A writer's `finish` refused this one message for good while the destination can
    take the next ones (LMTP: a 5xx to its sender or to its content). The run leaves it
    on the server, unrecorded and not deleted, names it, goes on with the rest, and
    ends with this error's status (69); every later run does the same until the
    destination takes it."""
