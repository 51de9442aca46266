"""Which messages of a POP3 mailbox are durably in the destination: the fetch state.

The mailbox is the one `fetch.mailbox.Mailbox` identifies (account, user, canonical host).

One file per mailbox, `$XDG_STATE_HOME/mailcli/fetch/NAME-HASH.uids` (NAME readable,
HASH from the exact identity, so two identities never share a file), in ASCII:

    # mailcli fetch state v4 ACCOUNT USER HOST     <- the identity, each part escaped
    # destination maildir:/home/me/Maildir          <- where the last batch went
    # formerly NAME                                 <- v1 state files merged in
    UID#SIZE@EPOCH UID#SIZE@EPOCH ...               <- one line per recorded batch

A UID is recorded with the size LIST gave for its message: a server that reuses a
deleted message's UID for a new message (RFC 1939 forbids it; some do after rebuilding
a mailbox) shows a different size, and fetch then knows the UID names another message
(`fetch.run`). A later line about the same UID replaces an earlier one. A UID without
"#SIZE" (migrated from version 2) matches any size. EPOCH (seconds since 1970, UTC) is
when the message was durably stored: `delete_after` counts from it (`fetch.retention`).

Every UID, destination and name is escaped: each byte outside 0x21-0x7E, and "%" and
"#" (and, in a UID of a batch line, "@"), is written as %XX (upper-case hex); the reader
accepts exactly the escapes. A UID
is any non-empty byte string a UIDL line can carry (no LF, not starting with a space,
not ending with CR); it is kept byte-exact (`pop3.commands.wire_text`).

A batch is recorded by appending its line and fsyncing: every byte is written (a short
write is continued), then read back; a record that is not whole is cut away and the
write fails (74). A crash mid-write leaves a line without its newline, which is not a
record: it is ignored on reading and cut before the next append, so a batch is recorded
whole or not at all, and never glued to the next one. At the end of a run the file is
compacted (rewritten atomically, times kept) to the UIDs the server still has. A file
whose first line is not the expected header is damaged or belongs to another mailbox:
that is an error (78), never a silent "fetch everything again".

A version 3 file (no times) or 2 (no sizes either) is rewritten as version 4 on load,
atomically, its UIDs stamped with that time: when they were stored is unknown, and
"now" means `delete_after` deletes them DAYS after the upgrade, never at once.
Version 1 files (`ACCOUNT_USER@HOST_PORT.uids`, by host text and port) are merged in
on load: the new file is written atomically with the union of all of them, then they
are removed; a crash in between merges them again (a union is idempotent).
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailcli.config import state_home
from mailcli.errors import ConfigError
from mailcli.fetch.mailbox import TOKEN, Mailbox, escape, unescape
from mailcli.fsutil import (
    atomic_write,
    ensure_private_dir,
    fsync_directory,
    write_all,
    write_error,
)

_HEADER = "# mailcli fetch state v4 "
_V3_HEADER = "# mailcli fetch state v3 "
_V2_HEADER = "# mailcli fetch state v2 "
_V1_HEADER = "# mailcli fetch state v1 "
_DESTINATION = "# destination "
_FORMERLY = "# formerly "
_TOKEN_LINE = re.compile(TOKEN + rb"(?: " + TOKEN + rb")*")
_SIZED = rb"(?:#[0-9]{1,20})?"  # "#SIZE" after a UID; "#" is never part of an escaped one
_SIZED_LINE = re.compile(TOKEN + _SIZED + rb"(?: " + TOKEN + _SIZED + rb")*")
_UID_TOKEN = rb"(?:[\x21\x22\x24\x26-\x3f\x41-\x7e]|%[0-9A-Fa-f]{2})+"  # v4: "@" escaped too
_STAMPED = _UID_TOKEN + _SIZED + rb"@[0-9]{1,20}"  # "UID#SIZE@EPOCH"
_STAMPED_LINE = re.compile(_STAMPED + rb"(?: " + _STAMPED + rb")*")
_V1_UID_LINE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")  # v1 stored UIDs raw


def default_state_dir() -> Path:
    return state_home() / "fetch"


Recorded = dict[str, int | None]  # UID -> the size LIST gave its message (None: unknown)


@dataclass
class _Contents:
    uids: Recorded = field(default_factory=dict)
    destination: str | None = None
    formerly: set[str] = field(default_factory=set)
    version: int = 4
    stored_at: dict[str, int] = field(default_factory=dict)  # UID -> epoch, when known


class UidState:
    """The state of one mailbox. `destination` is where this run delivers (recorded
    with the batches); `v1_name` this run's version 1 name (for old Maildir keys);
    `legacy_names` after `load` holds every version 1 name this mailbox had;
    `before_sizes` says whether no version 3 file existed (keys without sizes count)."""

    def __init__(
        self,
        directory: Path,
        mailbox: Mailbox,
        *,
        destination: str = "",
        v1_name: str = "",
        read_only: bool = False,
    ) -> None:
        self.directory = directory
        self.mailbox = mailbox
        self.path = directory / f"{mailbox.file_stem}.uids"
        self.header = _HEADER + mailbox.identity
        self.destination = destination
        self.previous_destination: str | None = None  # where the last batch went, at load
        self.legacy_names: set[str] = {v1_name} if v1_name else set()
        self.before_sizes = True
        self._formerly: set[str] = set()
        self.read_only = read_only  # a dry run: v1 files are merged in memory only
        self.stored_at: dict[str, int] = {}  # UID -> when its message was stored (epoch)

    def load(self) -> Recorded:
        """The recorded UIDs with their sizes (after merging any version 1 files of this
        mailbox, and rewriting a version 2 or 3 file as version 4); `stored_at` then
        says when each was stored."""
        contents = self._read()
        self.before_sizes = contents.version < 3 or not self.path.exists()
        old_files = self.mailbox.v1_files(self.directory)
        now = int(time.time())
        self.stored_at = {uid: contents.stored_at.get(uid, now) for uid in contents.uids}
        if old_files or contents.version < 4:
            contents = self._migrate(contents, old_files)
        self.previous_destination = contents.destination
        self._formerly = contents.formerly
        self.legacy_names |= contents.formerly
        return contents.uids

    def _read(self) -> _Contents:
        try:
            text = self.path.read_bytes().decode("ascii")
        except FileNotFoundError:
            return _Contents()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._damaged(self.path, str(exc)) from exc
        lines = text.split("\n")
        versions = {_V2_HEADER: 2, _V3_HEADER: 3, _HEADER: 4}
        version = versions.get(lines[0].removesuffix(self.mailbox.identity))
        if version is None:
            raise self._damaged(self.path, "its first line is not the expected header")
        contents = _Contents(version=version)
        for number, line in enumerate(lines[1:-1], 2):  # the last piece has no newline
            try:
                _read_line(line, contents)
            except ValueError:
                raise self._damaged(self.path, f"line {number} is not a list of UIDs") from None
        return contents

    def _migrate(self, contents: _Contents, old_files: list[Path]) -> _Contents:
        """Union the v1 files into this file, written as version 4 (atomically), then
        remove them. UIDs whose time is unknown are stamped now (`load`)."""
        now = int(time.time())
        for path in old_files:
            for uid in self._read_v1(path):
                contents.uids.setdefault(uid, None)
                self.stored_at.setdefault(uid, now)
            contents.formerly.add(path.stem)
        if self.read_only:
            return contents
        self._formerly = contents.formerly
        self.previous_destination = contents.destination
        self._rewrite(contents.uids)
        try:
            for path in old_files:
                path.unlink(missing_ok=True)
            fsync_directory(self.directory)
        except OSError as exc:
            raise write_error(exc, f"the fetch state {self.directory}") from exc
        return contents

    def _read_v1(self, path: Path) -> set[str]:
        try:
            text = path.read_bytes().decode("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise self._damaged(path, str(exc)) from exc
        lines = text.split("\n")
        if lines[0] != _V1_HEADER + path.stem:
            raise self._damaged(path, "its first line is not the expected header")
        uids: set[str] = set()
        for number, line in enumerate(lines[1:-1], 2):
            if line and not _V1_UID_LINE.fullmatch(line):
                raise self._damaged(path, f"line {number} is not a list of UIDs")
            uids.update(line.split(" "))
        uids.discard("")
        return uids

    @staticmethod
    def _damaged(path: Path, why: str) -> ConfigError:
        return ConfigError(
            f"fetch state {path} is damaged ({why}); refusing to guess which messages "
            "were already fetched",
            hint="move the file away to fetch every message again (or use --all)",
        )

    def record(self, messages: Iterable[tuple[str, int | None]]) -> None:
        """Append one batch of (UID, size) durably (one write, one fsync), stamped with
        the time now, after a `# destination` line when this run's destination is not
        the one last recorded."""
        now = int(time.time())
        batch = dict(messages)
        line = " ".join(_stamped(uid, size, now) for uid, size in batch.items())
        if not line:
            return
        moved = self.destination and self.destination != self.previous_destination
        text = (_DESTINATION + escape(self.destination) + "\n" if moved else "") + line + "\n"
        try:
            ensure_private_dir(self.path.parent)
            if not self.path.exists():  # created whole (header and batch) or not at all
                atomic_write(self.path, (self.header + "\n" + text).encode())
            else:
                self._append(text.encode())
        except OSError as exc:
            raise write_error(exc, f"the fetch state {self.path}") from exc
        if moved:
            self.previous_destination = self.destination
        self.stored_at.update(dict.fromkeys(batch, now))

    def _append(self, data: bytes) -> None:
        """Whole or not at all: a torn last line (a crash, a full disk) is cut first, so
        it never joins this record; this record is read back after the fsync, and cut
        again, with an error, unless every byte is there."""
        flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags)  # never through a symlink
        try:
            start = _cut_torn_line(fd)
            try:
                write_all(fd, data)
                os.fsync(fd)
                whole = os.pread(fd, len(data) + 1, start) == data
            except OSError:
                _truncate(fd, start)
                raise
            if not whole:
                _truncate(fd, start)
                raise OSError(errno.EIO, "the record did not reach the file whole", None)
        finally:
            os.close(fd)

    def compact(self, uids: Mapping[str, int | None]) -> None:
        """Rewrite the file with exactly these UIDs (those the server still has)."""
        self._rewrite(dict(uids))

    def _rewrite(self, uids: Recorded) -> None:
        lines = [self.header]
        if self.previous_destination:
            lines.append(_DESTINATION + escape(self.previous_destination))
        lines += [_FORMERLY + escape(name) for name in sorted(self._formerly)]
        now = int(time.time())
        stamps = [_stamped(uid, uids[uid], self.stored_at.get(uid, now)) for uid in sorted(uids)]
        if uids:
            lines.append(" ".join(stamps))
        try:
            ensure_private_dir(self.path.parent)
            atomic_write(self.path, ("\n".join(lines) + "\n").encode("ascii"))
        except OSError as exc:
            raise write_error(exc, f"the fetch state {self.path}") from exc


def _read_line(line: str, contents: _Contents) -> None:
    """One line after the header into `contents`; ValueError when it is not one the
    writer writes."""
    if line.startswith(_DESTINATION):
        contents.destination = unescape(line[len(_DESTINATION) :])
    elif line.startswith(_FORMERLY):
        contents.formerly.add(unescape(line[len(_FORMERLY) :]))
    elif line:
        pattern = {2: _TOKEN_LINE, 3: _SIZED_LINE}.get(contents.version, _STAMPED_LINE)
        if not pattern.fullmatch(line.encode("ascii")):
            raise ValueError(line)
        for token in line.split(" "):
            token, _, stored = token.partition("@") if contents.version == 4 else (token, "", "")
            uid, _, size = token.partition("#")
            contents.uids[unescape(uid)] = int(size) if size else None
            if stored:  # v3 and v2 have no times
                contents.stored_at[unescape(uid)] = int(stored)


def _stamped(uid: str, size: int | None, stored: int) -> str:
    """A version 4 token: the UID ("@" escaped too), "#SIZE" when known, "@EPOCH"."""
    token = escape(uid).replace("@", "%40")
    return f"{token}@{stored}" if size is None else f"{token}#{size}@{stored}"


def _cut_torn_line(fd: int) -> int:
    """Cut a last line without its newline (not a record); the size after."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    text = os.pread(fd, size, 0)
    keep = text.rfind(b"\n") + 1
    _truncate(fd, keep)
    return keep


def _truncate(fd: int, size: int) -> None:
    os.ftruncate(fd, size)
    os.fsync(fd)
