"""Recovery of a killed mbox fetch: it only ever removes
bytes this account's unrecorded batch wrote into that same file, and a dry run writes
nothing anywhere.

The kills are deterministic: mailcli runs under strace, which delivers SIGKILL at the
N-th fsync (or sendfile) of the mbox itself (`-P PATH` counts only syscalls on it).
"""

from __future__ import annotations

import os
import signal
import subprocess
from mailbox import mbox
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Mailcli, drop, message_ids
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox

LOCAL_DELIVERY = b"From local@example.test Mon Jan  1 00:00:00 2024\nSubject: local\n\nhi\n\n"
FOREIGN = (
    b"From old@example.test Sun Dec 31 00:00:00 2023\nSubject: kept\n"
    b"Message-ID: <kept@example.test>\n\nolder mail\n\n"
)


@pytest.fixture
def other_mailbox(dovecot: Dovecot) -> Mailbox:
    """A second user on the same server, whose fetch goes into the same files."""
    return make_mailbox(dovecot, "mbox-other-")


@pytest.fixture
def other(mailcli: Mailcli, dovecot: Dovecot, other_mailbox: Mailbox) -> Mailcli:
    """mailcli as the second account."""
    box = other_mailbox
    return mailcli.as_account(Account.pop3(dovecot, box.user, box.password))


def killed(fetch: Mailcli, path: Path, syscall: str, nth: int, *extra: str) -> None:
    """Run `mailcli fetch EXTRA` and SIGKILL it at the nth `syscall` on `path`."""
    inject = f"inject={syscall}:signal=SIGKILL:when={nth}"
    strace = ["strace", "-f", "-qq", "-P", str(path), "-e", inject, "-o", "/dev/null"]
    done = subprocess.run(
        [*strace, *MAILCLI, "fetch", *extra, *fetch.account.args()],
        env={**os.environ, **fetch.account.env(), "MAILCLI_FETCH_BATCH": "4"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def run(fetch: Mailcli, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*MAILCLI, "fetch", *extra, *fetch.account.args()],
        env={**os.environ, **fetch.account.env(), "MAILCLI_FETCH_BATCH": "4"},
        capture_output=True,
        timeout=120,
        check=False,
    )


def ids_in(*paths: Path) -> list[str]:
    """Every Message-ID in these mboxes, with repeats."""
    found = message_ids([m.as_bytes() for p in paths if p.exists() for m in mbox(p)])
    return sorted(found.elements())


def expected(numbers: range) -> list[str]:
    return sorted(f"<n{n}@example.test>" for n in numbers)


def test_a_crash_into_one_mbox_never_touches_another(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    """1a: the journal of `new` was applied to `archive` by a dry run, emptying it."""
    drop(mailbox, range(6))
    new, archive = tmp_path / "mail" / "new", tmp_path / "mail" / "archive"
    archive.parent.mkdir()
    archive.write_bytes(FOREIGN)
    killed(mailcli, new, "fsync", 1, "--delete", "--to", f"mbox:{new}")
    crashed = new.read_bytes()
    dry = run(mailcli, "--dry-run", "--limit", "1", "--to", f"mbox:{archive}")
    assert dry.returncode == 0, dry.stderr
    assert (archive.read_bytes(), new.read_bytes()) == (FOREIGN, crashed)
    done = run(mailcli, "--delete", "--to", f"mbox:{archive}")
    assert done.returncode == 0, done.stderr
    assert archive.read_bytes().startswith(FOREIGN)
    assert ids_in(new, archive) == sorted([*expected(range(6)), "<kept@example.test>"])
    assert mailcli.server_count() == 0


def test_another_account_waits_for_the_crashed_one(
    mailcli: Mailcli, mailbox: Mailbox, other: Mailcli, other_mailbox: Mailbox, tmp_path: Path
) -> None:
    """1b: the crashed account's rerun cut away what another account had fetched since."""
    drop(mailbox, range(5))
    drop(other_mailbox, range(100, 103))
    inbox = tmp_path / "inbox"
    killed(mailcli, inbox, "fsync", 1, "--delete", "--to", f"mbox:{inbox}")
    crashed = inbox.read_bytes()
    refused = run(other, "--delete", "--to", f"mbox:{inbox}")
    assert refused.returncode == 75
    assert b"run that account's fetch first" in refused.stderr
    assert str(inbox).encode() in refused.stderr
    assert (inbox.read_bytes(), other.server_count()) == (crashed, 3)
    for account in (mailcli, other):
        done = run(account, "--delete", "--to", f"mbox:{inbox}")
        assert done.returncode == 0, done.stderr
        assert account.server_count() == 0
    assert ids_in(inbox) == sorted([*expected(range(5)), *expected(range(100, 103))])


def test_mail_delivered_by_another_program_after_the_crash_is_kept(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    """1c: a local delivery appended after the crash was cut away with the batch."""
    drop(mailbox, range(6))
    inbox = tmp_path / "inbox"
    inbox.write_bytes(FOREIGN)
    killed(mailcli, inbox, "fsync", 1, "--delete", "--to", f"mbox:{inbox}")
    with inbox.open("ab") as handle:
        handle.write(LOCAL_DELIVERY)
    crashed = inbox.read_bytes()
    done = run(mailcli, "--delete", "--to", f"mbox:{inbox}")
    assert done.returncode == 0, done.stderr
    assert inbox.read_bytes().startswith(crashed)  # every byte kept, the rest appended
    assert ids_in(inbox) == sorted([*expected(range(6)), "<kept@example.test>"])
    assert mailcli.server_count() == 0


def test_a_batch_cut_short_then_foreign_bytes_is_left_alone_with_an_error(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    """1c, the case recovery cannot prove: half a message of ours, then someone else's."""
    drop(mailbox, range(4))
    inbox = tmp_path / "inbox"
    inbox.write_bytes(FOREIGN)
    killed(mailcli, inbox, "fsync", 1, "--delete", "--to", f"mbox:{inbox}")
    os.truncate(inbox, inbox.stat().st_size - 20)  # as if the crash came mid-append
    with inbox.open("ab") as handle:
        handle.write(LOCAL_DELIVERY)
    crashed = inbox.read_bytes()
    for _ in range(2):  # the same answer each time, the file untouched
        refused = run(mailcli, "--delete", "--to", f"mbox:{inbox}")
        assert refused.returncode == 73, refused.stderr
        assert str(inbox).encode() in refused.stderr and b"offset" in refused.stderr
        assert inbox.read_bytes() == crashed
    assert mailcli.server_count() == 4


def test_a_batch_cut_short_is_cut_back_to_its_last_whole_message(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    drop(mailbox, range(4))
    inbox = tmp_path / "inbox"
    inbox.write_bytes(FOREIGN)
    killed(mailcli, inbox, "fsync", 1, "--delete", "--to", f"mbox:{inbox}")
    os.truncate(inbox, inbox.stat().st_size - 20)
    done = run(mailcli, "--delete", "--to", f"mbox:{inbox}")
    assert done.returncode == 0, done.stderr
    assert inbox.read_bytes().startswith(FOREIGN)
    assert ids_in(inbox) == sorted([*expected(range(4)), "<kept@example.test>"])


def test_killed_twice_in_a_row_then_every_message_once_and_no_nul_bytes(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    """2: the second run journaled a stale size (its file position predated the
    recovery's truncation), so the third run fetched a batch again."""
    drop(mailbox, range(10))
    inbox = tmp_path / "inbox"
    inbox.write_bytes(FOREIGN)
    killed(mailcli, inbox, "fsync", 1, "--delete", "--to", f"mbox:{inbox}")
    killed(mailcli, inbox, "fsync", 2, "--delete", "--to", f"mbox:{inbox}")
    done = run(mailcli, "--delete", "--to", f"mbox:{inbox}")
    assert done.returncode == 0, done.stderr
    data = inbox.read_bytes()
    assert data.startswith(FOREIGN) and b"\0" not in data
    assert ids_in(inbox) == sorted([*expected(range(10)), "<kept@example.test>"])
    assert mailcli.server_count() == 0


def test_killed_inside_the_append_then_every_message_once(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    drop(mailbox, range(6))
    inbox = tmp_path / "inbox"
    inbox.write_bytes(FOREIGN)
    killed(mailcli, inbox, "sendfile", 3, "--delete", "--to", f"mbox:{inbox}")
    killed(mailcli, inbox, "sendfile", 2, "--delete", "--to", f"mbox:{inbox}")
    done = run(mailcli, "--delete", "--to", f"mbox:{inbox}")
    assert done.returncode == 0, done.stderr
    assert ids_in(inbox) == sorted([*expected(range(6)), "<kept@example.test>"])


def listing(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under root: (is a directory, size, mtime in ns)."""
    found = {}
    for directory, subdirs, files in os.walk(root):
        for name in [*subdirs, *files]:
            path = Path(directory) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (path.is_dir(), info.st_size, info.st_mtime_ns)
    return found


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_dry_run_writes_nothing_after_a_crash(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, kind: str
) -> None:
    """9: a dry run ran the recovery and recorded Maildir keys into the state."""
    drop(mailbox, range(6))
    target = tmp_path / "mail" / "inbox"
    if kind == "mbox":
        killed(mailcli, target, "fsync", 1, "--to", f"mbox:{target}")
    else:
        killed(mailcli, target / "new", "fsync", 1, "--to", f"maildir:{target}")
    before = listing(tmp_path)
    dry = run(mailcli, "--dry-run", "--json", "--to", f"{kind}:{target}")
    assert dry.returncode == 0, dry.stderr
    assert listing(tmp_path) == before


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_dry_run_creates_no_destination_and_no_state(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, kind: str
) -> None:
    drop(mailbox, range(3))
    before = listing(tmp_path)
    dry = run(mailcli, "--dry-run", "--json", "--to", f"{kind}:{tmp_path}/mail/inbox")
    assert dry.returncode == 0, dry.stderr
    assert b'"would_fetch": 3' in dry.stdout
    assert listing(tmp_path) == before
