"""Process bookkeeping shared by the daemon launchers: liveness and group cleanup.

Linux only, as the daemons are. Daemons are started in their own session, so their process
group id equals the leader's pid and every helper process they fork stays in that group;
that is how ``stop()`` can prove that nothing of an instance is left running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return text[text.rindex(")") + 2 :].split()


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie.

    ``kill -0`` is not enough: an exited process stays a zombie ('Z') until its parent reaps
    it, and for a daemonised process that parent may be PID 1, which on this kind of machine
    does not reliably reap (see ``adopt_orphans``).
    """
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _group(pgid: int) -> list[tuple[int, str, int]]:
    """(pid, state, ppid) of every process, zombies included, in process group ``pgid``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # After the name come: state, ppid, pgrp, ...
        if fields is not None and int(fields[2]) == pgid:
            found.append((int(entry.name), fields[0], int(fields[1])))
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    return [pid for pid, state, _ in _group(pgid) if state not in ("Z", "X")]


def wait_until_gone(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s until group ``pgid`` has no live process; reap our zombies.

    Returns True if the group emptied. Zombies left to other parents are not counted.
    """
    deadline = time.monotonic() + timeout
    while True:
        _reap_own_zombies(pgid)
        if not group_members(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _reap_own_zombies(pgid: int) -> None:
    """waitpid() the exited members of ``pgid`` that are (now) this process's children.

    Reaping a dead parent re-parents its own dead children to us, hence the loop.
    """
    me = os.getpid()
    while zombies := [pid for pid, state, ppid in _group(pgid) if state == "Z" and ppid == me]:
        for pid in zombies:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL whatever is left of group ``pgid`` and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if not wait_until_gone(pgid, timeout):
        raise RuntimeError(f"processes {group_members(pgid)} survived SIGKILL")


def adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux "child subreaper").

    Postfix's master daemonises, and when stopped exits before its children. Orphans are
    normally re-parented to PID 1, which on this kind of machine does not reap them, so they
    would linger as zombies for good. As a subreaper this process inherits them instead, and
    wait_until_gone() reaps them. Idempotent; affects only orphans of this process's own
    descendants.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def which(binary: str) -> str | None:
    """Absolute path of ``binary``, also looking in the sbin directories.

    dovecot, postfix and postmap live in /usr/sbin, which is not on every user's PATH.
    """
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_DIRS])
    return shutil.which(binary, path=search)


def binary(name: str) -> str:
    """Like ``which`` but raising FileNotFoundError, for places that cannot do without it."""
    path = which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed")
    return path


def make_workdir(prefix: str) -> Path:
    """A fresh, short, world-traversable directory under /tmp.

    Short because unix socket paths are limited to 107 bytes; under /tmp and mode 755 because
    unprivileged daemon users (dovenull, postfix, mail uid 5000) must traverse it, which
    pytest's tmp_path (below a 0700 directory) does not allow.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def read_log(path: Path) -> str:
    """What a daemon's log (or output) file holds so far: "" before the daemon made it,
    undecodable bytes replaced."""
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for_text(read: Callable[[], str], text: str, timeout: float, what: str) -> str:
    """Poll `read()` (a daemon's log, say) until it holds `text`; return what it read.
    After `timeout` s: TimeoutError naming `what` and showing what it held."""
    deadline = time.monotonic() + timeout
    while text not in (found := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {what}:\n{found}")
        time.sleep(0.05)
    return found
