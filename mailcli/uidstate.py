"""Which messages of a POP3 server are durably in the destination: the fetch state.

One file per account and server, `$XDG_STATE_HOME/mailcli/fetch/NAME.uids`:

    # mailcli fetch state v1 ACCOUNT USER@HOST:PORT
    UID UID UID ...        <- one line per recorded batch
    UID ...

A batch is recorded by appending one line and fsyncing: a crash mid-write leaves a line
without its newline, which is ignored, so a batch is recorded whole or not at all. At
the end of a run the file is compacted (rewritten atomically) to the UIDs the server
still has. A file whose first line is not the expected header is damaged or belongs to
another server: that is an error (78), never a silent "fetch everything again".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from mailcli.config import state_home
from mailcli.errors import ConfigError
from mailcli.fsutil import (
    PRIVATE_FILE,
    atomic_write,
    ensure_private_dir,
    fsync_directory,
    write_error,
)

_UID_LINE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")  # RFC 1939: UIDs are 0x21-0x7E


def default_state_dir() -> Path:
    return state_home() / "fetch"


def state_name(account: str | None, user: str | None, host: str, port: int) -> str:
    raw = f"{account or '-'}_{user or '-'}@{host}_{port}"
    return re.sub(r"[^A-Za-z0-9@._-]", "_", raw)


class UidState:
    def __init__(self, path: Path, server_id: str) -> None:
        self.path = path
        self.header = f"# mailcli fetch state v1 {server_id}"

    def load(self) -> set[str]:
        try:
            text = self.path.read_bytes().decode("ascii")
        except FileNotFoundError:
            return set()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._damaged(str(exc)) from exc
        lines = text.split("\n")
        if lines[0] != self.header:
            raise self._damaged("its first line is not the expected header")
        uids: set[str] = set()
        for number, line in enumerate(lines[1:-1], 2):  # the last piece has no newline
            if line and not _UID_LINE.fullmatch(line):
                raise self._damaged(f"line {number} is not a list of UIDs")
            uids.update(line.split())
        return uids

    def _damaged(self, why: str) -> ConfigError:
        return ConfigError(
            f"fetch state {self.path} is damaged ({why}); refusing to guess which messages "
            "were already fetched",
            hint="move the file away to fetch every message again (or use --all)",
        )

    def record(self, uids: Iterable[str]) -> None:
        """Append one batch durably (one write, one fsync)."""
        line = " ".join(uids)
        if not line:
            return
        try:
            ensure_private_dir(self.path.parent)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
            try:
                os.write(
                    fd, ((self.header + "\n") if created else "").encode() + (line + "\n").encode()
                )
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_directory(self.path.parent)
        except OSError as exc:
            raise write_error(exc, f"the fetch state {self.path}") from exc

    def compact(self, uids: Iterable[str]) -> None:
        """Rewrite the file with exactly these UIDs (those the server still has)."""
        body = " ".join(sorted(uids))
        text = self.header + "\n" + (body + "\n" if body else "")
        try:
            ensure_private_dir(self.path.parent)
            atomic_write(self.path, text.encode())
        except OSError as exc:
            raise write_error(exc, f"the fetch state {self.path}") from exc
