"""When a test may read a Dovecot user's Maildir: once no session of Dovecot's works on it.

Dovecot's pop3 process answers a login ("+OK Logged in.") first and syncs the Maildir
after, renaming every file of new/ into cur/; it does so even when its client is gone.
A fetch killed between that answer and the next one leaves the process at it, and a test
reading the Maildir then may list a file in new/ and find it gone when it opens it
(FileNotFoundError), or not, by the machine's speed.

Each such process works in the user's home: Dovecot changes into it before it answers
the login, and pop3 serves one session per process (its service_count is 1). So once no
process is left whose working directory is that home, nothing of Dovecot's changes the
Maildir until the next login: `wait_for_sessions` waits for that.

Dovecot's LMTP needs no such wait: it answers 250 only once the message is in new/, and
it only ever adds files there.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .dovecot import Dovecot
from .procs import PROC

# Dovecot's own lock on a Maildir's UID list: its sync holds it while it moves new/ to
# cur/, changes flags or expunges (tests hold it to stop a session just before that).
UIDLIST_LOCK = "dovecot-uidlist.lock"


def _home(dovecot: Dovecot, user: str) -> str:
    return os.path.realpath(dovecot.maildir(user).parent)


def _works_in(pid: int, home: str) -> bool:
    """The process exists, has not exited (a zombie has no working directory) and works
    in `home`."""
    try:
        return os.readlink(PROC / str(pid) / "cwd") == home
    except OSError:
        return False


def sessions(dovecot: Dovecot, user: str) -> list[int]:
    """The processes working on `user`'s mail now (their working directory is the
    user's home): Dovecot's pop3 sessions of that user."""
    home = _home(dovecot, user)
    pids = (int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())
    return [pid for pid in pids if _works_in(pid, home)]


def wait_for_sessions(dovecot: Dovecot, user: str, timeout: float = 60.0) -> None:
    """Wait until every session of `user` running now is over (see the module's
    docstring); a session still running after `timeout` s (a client still connected)
    is an error, not a wait for ever."""
    home = _home(dovecot, user)
    deadline = time.monotonic() + timeout
    running = sessions(dovecot, user)
    while running := [pid for pid in running if _works_in(pid, home)]:
        if time.monotonic() > deadline:
            raise AssertionError(f"Dovecot's session(s) {running} of {user} still running")
        time.sleep(0.01)


@contextlib.contextmanager
def uidlist_locked(maildir: Path) -> Iterator[None]:
    """Hold Dovecot's lock on `maildir` (a dot-lock: the file exists): a session that
    logs in meanwhile answers and then waits, with everything still in new/."""
    lock = maildir / UIDLIST_LOCK
    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        yield
    finally:
        lock.unlink()
