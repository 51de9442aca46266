"""`--to` parsed into a destination: `maildir:PATH` (or a bare path), `mbox:PATH`,
`mda:COMMAND` or `lmtp:SOCKET` / `lmtp:HOST:PORT`, and the dry run's `Preview`. What each
kind promises is in `fetch.destination` (LMTP: `fetch.lmtp`); each kind's module is
imported only when `--to` names it (a run into a Maildir never loads the mbox's journal
and locks, nor smtplib).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from mailcli.endpoint import DEFAULT_TIMEOUT
from mailcli.errors import ConfigError
from mailcli.fetch.destination import BATCH_SIZE, Destination, MessageWriter, RecoveryHooks
from mailcli.transcript import Transcript

FETCH_BATCH_SETTING = "MAILCLI_FETCH_BATCH"


def fetch_batch_size(environ: Mapping[str, str] = os.environ) -> int:
    """Messages per batch (one sync and one state record each) for Maildir and mbox:
    `MAILCLI_FETCH_BATCH` when set, else `BATCH_SIZE`. Smaller batches lose less work to
    a crash and cost more syncs; an MDA's batch is always one message."""
    text = environ.get(FETCH_BATCH_SETTING, "").strip()
    if not text:
        return BATCH_SIZE
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigError(f"{FETCH_BATCH_SETTING}={text!r}: expected a whole number of at least 1")
    return int(text)


def open_destination(
    spec: str,
    *,
    journal: Path,
    read_only: bool = False,
    lock_wait: float = 0.0,
    lmtp: LmtpSettings | None = None,
) -> Destination:
    """`maildir:PATH`, `mbox:PATH`, `mda:COMMAND` or `lmtp:TARGET` (a bare path means
    Maildir); `read_only` (a dry run): a `Preview` that creates and writes nothing;
    `lock_wait`: how long an mbox waits for another program's locks; `lmtp`: the LMTP
    recipient, transcript and timeout."""
    kind, colon, target = spec.partition(":")
    if not colon:
        kind, target = "maildir", spec
    if kind == "lmtp":
        return _lmtp(target, journal.parent, lmtp or LmtpSettings(), read_only=read_only)
    if read_only and kind in ("maildir", "mbox", "mda"):
        return Preview(kind, target)
    if kind == "maildir":
        from mailcli.fetch.maildir import Maildir

        size = fetch_batch_size()  # before anything is created
        return Maildir(Path(os.path.expanduser(target)), batch_size=size)
    if kind == "mbox":
        from mailcli.fetch.mbox import Mbox

        size = fetch_batch_size()  # before the mbox is locked
        path = Path(os.path.expanduser(target))
        return Mbox(path, journal=journal, lock_wait=lock_wait, batch_size=size)
    if kind == "mda":
        from mailcli.fetch.mda import Mda

        return Mda(target, spool=journal.parent)  # the fetch state folder
    raise ConfigError(
        f"unknown destination {spec!r}: use maildir:PATH, mbox:PATH, mda:CMD or lmtp:SOCKET"
    )


class LmtpSettings(NamedTuple):
    """What an LMTP destination needs besides its target (`fetch.lmtp`)."""

    recipient: str | None = None  # --lmtp-rcpt, else the account's POP3 user
    transcript: Transcript = Transcript()
    timeout: float = DEFAULT_TIMEOUT


def _lmtp(target: str, spool: Path, settings: LmtpSettings, *, read_only: bool) -> Destination:
    """Checked (64 on a bad target, 65 on a bad recipient) before any connection, in a
    dry run too; a dry run connects to nothing."""
    from mailcli.fetch.lmtp import Lmtp, checked_recipient, parse_target

    if read_only:
        where, recipient = parse_target(target), checked_recipient(settings.recipient)
        return Preview("lmtp", f"{where} rcpt {recipient}")
    return Lmtp(
        target,
        recipient=settings.recipient,
        transcript=settings.transcript,
        timeout=settings.timeout,
        spool=spool,  # the fetch state folder
    )


class Preview(RecoveryHooks):
    """What `fetch --dry-run` sees of a destination: it only reads (a Maildir's keys,
    when the folder exists); it creates, locks, recovers and writes nothing."""

    batch_size = BATCH_SIZE  # never used: a dry run delivers nothing

    def __init__(self, kind: str, target: str) -> None:
        where = target if kind in ("mda", "lmtp") else os.path.expanduser(target)
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
