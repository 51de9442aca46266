"""`fetch` into an mbox that another program (procmail, a mail reader) holds locked waits
for it, up to `--timeout`, instead of giving up at once (75).

The test holds the lock itself: the dot-lock `inbox.lock` (holding the test's own PID,
so it is not stale) or an fcntl lock on the mbox. It lets go only once fetch is seen
waiting: strace stops fetch (SIGSTOP) on entry to its second attempt at that lock, so
the first attempt has failed; the test then releases the lock and lets fetch go on.
Nothing depends on timing. Held beyond the bound, fetch exits 75 having written nothing.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from mailbox import mbox
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Mailcli, drop, message_ids
from tests.servers import require
from tests.servers.fixtures import Mailbox

MESSAGES = 3
EXPECTED = sorted(f"<n{n}@example.test>" for n in range(MESSAGES))


@contextmanager
def dot_locked(target: Path) -> Iterator[Path]:
    """`TARGET.lock` as procmail or mutt leave it while delivering (a live PID in it)."""
    lock = target.with_name(target.name + ".lock")
    lock.write_text(f"{os.getpid()}\n")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


@contextmanager
def fcntl_locked(target: Path) -> Iterator[int]:
    """An fcntl (POSIX) lock on the mbox, held by this process."""
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def fetch_argv(fetch: Mailcli, target: Path, *extra: str) -> list[str]:
    return [*MAILCLI, "fetch", "--to", f"mbox:{target}", *extra, *fetch.account.args()]


def environment(fetch: Mailcli) -> dict[str, str]:
    return {**os.environ, **fetch.account.env()}


def wait_until_stopped(log: Path, strace: subprocess.Popen[bytes]) -> None:
    """Until strace reports mailcli stopped by the injected SIGSTOP (strace writes each
    line as it happens); it never runs on by itself."""
    while "--- stopped by SIGSTOP ---" not in (log.read_text() if log.exists() else ""):
        assert strace.poll() is None, "mailcli ended before it waited"


def tracee(log: Path) -> int:
    """mailcli's PID, from strace's line about the stop (`-f` prefixes each line)."""
    (line,) = [line for line in log.read_text().splitlines() if "stopped by SIGSTOP" in line]
    return int(line.split()[0])


def ids_in(target: Path) -> list[str]:
    return sorted(message_ids([m.as_bytes() for m in mbox(target)]).elements())


# (how the lock is held, the system call that takes it, strace's -P filter or none)
LOCKS = [("dot-lock", "link"), ("fcntl", "fcntl")]


@pytest.mark.parametrize(("kind", "syscall"), LOCKS)
def test_fetch_waits_for_another_programs_lock_then_delivers(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, kind: str, syscall: str
) -> None:
    require("strace")
    drop(mailbox, range(MESSAGES))
    (tmp_path / "mail").mkdir()
    target = tmp_path / "mail" / "inbox"
    target.touch(mode=0o600)
    holder = dot_locked(target) if kind == "dot-lock" else fcntl_locked(target)
    only = ["-P", str(target)] if syscall == "fcntl" else []  # fcntl: on the mbox only
    inject = f"inject={syscall}:signal=SIGSTOP:when=2"  # entry to the second attempt
    log = tmp_path / "strace.log"
    strace = ["strace", "-f", "-qq", "-o", str(log), *only, "-e", f"trace={syscall}"]
    with holder:
        process = subprocess.Popen(
            [*strace, "-e", inject, *fetch_argv(mailcli, target, "--delete")],
            env=environment(mailcli),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_until_stopped(log, process)  # its first attempt failed: fetch is waiting
        pid = tracee(log)
    os.kill(pid, signal.SIGCONT)  # the lock is free now
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert ids_in(target) == EXPECTED
    assert mailcli.server_count() == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["inbox"]  # no lock left behind


@pytest.mark.parametrize("kind", ["dot-lock", "fcntl"])
def test_a_lock_held_beyond_the_timeout_is_75_and_nothing_is_written(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, kind: str
) -> None:
    drop(mailbox, range(MESSAGES))
    (tmp_path / "mail").mkdir()
    target = tmp_path / "mail" / "inbox"
    target.write_bytes(b"")
    holder = dot_locked(target) if kind == "dot-lock" else fcntl_locked(target)
    with holder:
        done = subprocess.run(
            fetch_argv(mailcli, target, "--delete", "--timeout", "1"),
            env=environment(mailcli),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 75, done.stderr
        assert "(waited 1 s)" in done.stderr and "Traceback" not in done.stderr
        assert target.read_bytes() == b""
        assert mailcli.server_count() == MESSAGES
    again = subprocess.run(
        fetch_argv(mailcli, target, "--delete"),
        env=environment(mailcli),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert ids_in(target) == EXPECTED
    assert mailcli.server_count() == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["inbox"]
