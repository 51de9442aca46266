"""mpop's UIDL file and getmail's oldmail file, carried over into mailcli's fetch state.

getmail6 writes `oldmail-SERVER-PORT-USER` beside its rc file: one line per message it
has seen, `UID`, a NUL and the time in seconds. fetchmail's idfile (`~/.fetchids`) has
one line per message of every mailbox it polls: `USER@HOST UID`.

mpop (1.4) writes, after `#` comment lines, one list per mailbox: a line starting with
a space, ` COUNT HOST USER`, then COUNT UIDs, one a line. One file may hold several
mailboxes; the one whose host and user are the account's is taken (the host as written
in mpop's configuration, which is how mpop names it). No file: mpop has fetched nothing
from that mailbox, so there is nothing to carry over.

The UIDs are recorded through `fetch.state.UidState` (never by writing its format),
under the fetch lock of that mailbox, without sizes: mpop kept none, and a UID without
a size matches a message of any size. UIDs mailcli has recorded already are left as
they are. Anything that is not that format is an error (65) naming the line.
"""

from __future__ import annotations

from pathlib import Path

from mailcli.errors import DataError, NoInputError
from mailcli.importer.plan import StateSource
from mailcli.importer.rcfile import MAX_FILE_SIZE

# A UIDL file lists every message of a mailbox: far larger than a configuration file.
MAX_UIDLS_SIZE = 256 * MAX_FILE_SIZE


def read_state_file(source: StateSource) -> list[str]:
    """The UIDs the old tool recorded for the source's mailbox."""
    if source.kind == "getmail":
        return read_oldmail(source.state_file)
    if source.kind == "fetchmail":
        return read_fetchids(source.state_file, f"{source.user}@{source.host}")
    return read_uidls(source.state_file, source.host, source.user)


def read_oldmail(path: Path) -> list[str]:
    """getmail's oldmail file: one `UID NUL SECONDS` a line, for one mailbox."""
    uids = []
    for number, line in enumerate(_read_lines(path), 1):
        uid, nul, seen = line.partition("\0")
        if not line:
            continue
        if not (uid and nul and seen.isdigit()) or uid.startswith(" "):
            raise DataError(f"{path}:{number}: not a getmail oldmail file (UID, NUL, time)")
        uids.append(uid)
    return uids


def read_fetchids(path: Path, login: str) -> list[str]:
    """fetchmail's idfile: `USER@HOST UID` a line, for every mailbox it polls."""
    uids = []
    for number, line in enumerate(_read_lines(path), 1):
        owner, _, uid = line.partition(" ")
        if not line:
            continue
        if not uid or "@" not in owner or uid.startswith(" "):
            raise DataError(f"{path}:{number}: not a fetchmail idfile (USER@HOST UID)")
        if owner == login:
            uids.append(uid)
    return uids


def read_uidls(path: Path, host: str, user: str) -> list[str]:
    """The UIDs recorded for USER at HOST (empty when the file has no such list)."""
    lines = _read_lines(path)
    found: list[str] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line or line.startswith("#"):
            continue
        count, list_host, list_user = _list_header(path, number, line)
        uids = lines[number : number + count]
        if len(uids) < count or not all(uid and not uid.startswith(" ") for uid in uids):
            raise DataError(f"{path}:{number}: the list promises {count} UIDs, one a line")
        number += count
        if (list_host, list_user) == (host, user):
            found.extend(uids)
    return found


def _read_lines(path: Path) -> list[str]:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_UIDLS_SIZE + 1)
    except FileNotFoundError:
        return []  # mpop has not fetched this mailbox yet: nothing to carry over
    except OSError as exc:
        raise NoInputError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_UIDLS_SIZE:
        raise DataError(f"{path}: larger than {MAX_UIDLS_SIZE // 1024 // 1024} MiB")
    # UIDs are bytes 0x21-0x7E (RFC 1939); anything else is kept as mailcli keeps it.
    return data.decode("utf-8", "surrogateescape").split("\n")


def _list_header(path: Path, number: int, line: str) -> tuple[int, str, str]:
    parts = line[1:].split(" ", 2) if line.startswith(" ") else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1] or not parts[2]:
        raise DataError(f"{path}:{number}: not an mpop UIDL file (expected ' COUNT HOST USER')")
    return int(parts[0]), parts[1], parts[2]


def check_state(source: StateSource, state_dir: Path) -> None:
    """Read mailcli's state of that mailbox, writing nothing: a damaged one is an error
    (78) before the import has written anything."""
    from mailcli.fetch.mailbox import Mailbox
    from mailcli.fetch.state import UidState

    mailbox = Mailbox(source.account, source.user, source.host)
    UidState(state_dir, mailbox, read_only=True).load()


def record_state(source: StateSource, uids: list[str], state_dir: Path) -> int:
    """Record `uids` (read from `source`) as fetched; how many were new to mailcli."""
    from mailcli.fetch.mailbox import Mailbox
    from mailcli.fetch.state import UidState
    from mailcli.fsutil import FileLock

    mailbox = Mailbox(source.account, source.user, source.host)
    with FileLock(state_dir / f"{mailbox.file_stem}.lock", "fetch for this account"):
        state = UidState(state_dir, mailbox, destination=f"{source.kind}:{source.state_file}")
        recorded = state.load()
        new = [(uid, None) for uid in dict.fromkeys(uids) if uid not in recorded]
        state.record(new)
    return len(new)
