"""A full disk, a failing close and a short write at the exact system calls of `fetch`
(and of `queue run`'s lock), through the real CLI process against Dovecot.

Each fault is injected by strace at one call of the process: a counting run in a
scratch home (same account, same kind of destination, the server left as it is) finds
which occurrence of the system call touches the target (`-yy` names the file), then the
real run gets `-e inject=SYSCALL:error=ERRNO:when=N` (or `retval=3`, a short write) at
exactly that call. What must hold: the documented status (74 for a full disk), one
`mailcli: error:` line and no traceback, no temporary file left anywhere, nothing
deleted on the server; then a run with space delivers every message exactly once.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.diskfull import (
    FETCHED_ONCE,
    MESSAGES,
    Fault,
    environment,
    fetch_argv,
    fetched,
    final_state,
    injected,
    leftovers,
    occurrence,
)
from tests.helpers import MAILCLI, Mailcli, drop
from tests.servers import require
from tests.servers.fixtures import Mailbox

FULL_DISK = [
    # The lock file's PID write (the first fetch, before any mail): was 70.
    Fault("write", r"/mailcli/fetch/[^/>]*\.lock>", "ENOSPC", "maildir"),
    # The mbox dot-lock's PID write: was 70, and `.inbox.lock.HEX.part` stayed behind.
    Fault("write", r"/\.inbox\.lock\.[0-9a-f]+\.part>", "ENOSPC", "mbox"),
    # The dot-lock temporary's close() fails: it must still be removed.
    Fault("close", r"/\.inbox\.lock\.[0-9a-f]+\.part>", "EIO", "mbox"),
    # The mbox batch file's write: a BufferError replaced the 74 (was 70).
    Fault("pwrite64", r"\.mbox-batch>", "ENOSPC", "mbox"),
    # The journal, the state file's first write, its fsync and its close.
    Fault("write", r"journal\.[0-9a-f]+\.part>", "ENOSPC", "mbox"),
    Fault("write", r"\.uids\.[0-9a-f]+\.part>", "ENOSPC", "maildir"),
    Fault("fsync", r"\.uids\.[0-9a-f]+\.part>", "ENOSPC", "maildir"),
    Fault("close", r"\.uids\.[0-9a-f]+\.part>", "EIO", "mbox"),
    # A Maildir message's close, the mbox's own fsync after the append.
    Fault("close", r"/Maildir/tmp/[^>]*>", "EIO", "maildir"),
    Fault("fsync", r"/inbox>", "ENOSPC", "mbox"),
    # The state file's append (the second batch).
    Fault("write", r"\.uids>", "ENOSPC", "mbox"),
    Fault("fsync", r"\.uids>", "ENOSPC", "maildir"),
]


@pytest.mark.parametrize("fault", FULL_DISK, ids=lambda f: f"{f.syscall}-{f.error}-{f.target}")
def test_a_full_disk_at_each_write_is_74_and_a_rerun_delivers_exactly_once(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, fault: Fault
) -> None:
    require("strace")
    drop(mailbox, range(MESSAGES))
    when = occurrence(mailcli, fault, tmp_path / "scratch")
    home = tmp_path / "home"
    env = environment(mailcli, home)
    failed = injected(
        fetch_argv(mailcli, fault.kind, home, "--delete"), env, f"{fault.inject}:when={when}"
    )
    assert failed.returncode == 74, failed.stderr
    lines = failed.stderr.splitlines()
    assert lines[0].startswith("mailcli: error: ") and "Traceback" not in failed.stderr, lines
    assert not any(line.startswith("mailcli: error: ") for line in lines[1:]), lines
    assert leftovers(home) == []
    assert mailcli.server_count() == MESSAGES  # no QUIT after the failure: nothing deleted
    again = fetched(fetch_argv(mailcli, fault.kind, home, "--delete"), env)
    assert again.returncode == 0, again.stderr
    assert final_state(mailcli, fault.kind, home) == FETCHED_ONCE


# The disk fills up after the short write: the last batch's journal (mbox) or sync
# (Maildir) fails, so the run ends before the state is compacted from memory.
FULL_AFTERWARDS = {
    "mbox": Fault("fsync", r"journal\.[0-9a-f]+\.part>", "ENOSPC", "mbox"),
    "maildir": Fault("syncfs", r".", "ENOSPC", "maildir"),
}


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_a_short_write_of_the_state_append_never_counts_as_recorded(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, kind: str
) -> None:
    """`write(state, "uid-3 uid-4\\n") = 3`, then the disk is full: the record is not
    whole, so it is not a record; the mbox journal that proves the batch stays, and a
    rerun with space fetches nothing twice. (Maildir: its file names also prove it.)"""
    require("strace")
    drop(mailbox, range(MESSAGES))
    short = Fault("write", r"\.uids>", "retval=3", kind)
    full = FULL_AFTERWARDS[kind]
    at_short = occurrence(mailcli, short, tmp_path / "scratch")
    at_full = occurrence(mailcli, full, tmp_path / "scratch2", -1)
    home = tmp_path / "home"
    env = environment(mailcli, home)
    inject = f"{short.inject}:when={at_short} -e inject={full.inject}:when={at_full}"
    first = injected(fetch_argv(mailcli, kind, home), env, inject)
    assert first.returncode == 74, first.stderr
    assert "Traceback" not in first.stderr
    again = fetched(fetch_argv(mailcli, kind, home, "--delete"), env)
    assert again.returncode == 0, again.stderr
    assert final_state(mailcli, kind, home) == FETCHED_ONCE


def test_the_first_queue_run_on_a_full_disk_is_74(tmp_path: Path) -> None:
    """The queue's lock file holds the PID too: its write failing was 70."""
    require("strace")
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    lock = home / "state" / "mailcli" / "queue" / ".lock"
    strace = ["strace", "-qq", "-o", os.devnull, "-P", str(lock)]
    done = subprocess.run(
        [*strace, "-e", "inject=write:error=ENOSPC:when=1", *MAILCLI, "queue", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 74, done.stderr
    assert done.stderr.startswith("mailcli: error: ") and "Traceback" not in done.stderr
    assert not [p for p in lock.parent.iterdir() if p.name != ".lock"]


# Closing a file whose bytes no longer matter (a lock about to be let go, the batch file
# whose batch is recorded, the mbox after its fsync) can fail too (EIO): the run's
# outcome stands, the file is still removed where it is a temporary.
LATE_CLOSES = [
    Fault("close", r"/mailcli/fetch/[^/>]*\.lock>", "EIO", "maildir"),
    Fault("close", r"\.mbox-batch>", "EIO", "mbox"),
    Fault("close", r"/inbox>", "EIO", "mbox"),
]


@pytest.mark.parametrize("fault", LATE_CLOSES, ids=lambda f: f"{f.kind}-{f.target}")
def test_a_failing_close_after_the_work_is_durable_changes_nothing(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, fault: Fault
) -> None:
    require("strace")
    drop(mailbox, range(MESSAGES))
    when = occurrence(mailcli, fault, tmp_path / "scratch", -1)
    home = tmp_path / "home"
    done = injected(
        fetch_argv(mailcli, fault.kind, home, "--delete"),
        environment(mailcli, home),
        f"{fault.inject}:when={when}",
    )
    assert done.returncode == 0, done.stderr
    assert final_state(mailcli, fault.kind, home) == FETCHED_ONCE
