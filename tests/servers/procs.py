"""Process bookkeeping shared by the daemon launchers: liveness and group cleanup.

Linux only, as the daemons are. Daemons are started in their own session, so their process
group id equals the leader's pid and every helper process they fork stays in that group;
that is how ``stop()`` can prove that nothing of an instance is left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

PROC = Path("/proc")


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

    ``kill -0`` is not enough: a daemon that double-forked away from us is reparented to
    PID 1, which on this kind of machine does not always reap, so a stopped daemon can stay
    behind as a zombie ('Z') forever.
    """
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # After the name: state, ppid, pgrp, ...
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def wait_until_gone(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for process group ``pgid`` to empty; True if it did."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL whatever is left of group ``pgid`` and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if not wait_until_gone(pgid, timeout):
        raise RuntimeError(f"processes {group_members(pgid)} survived SIGKILL")


def make_workdir(prefix: str) -> Path:
    """A fresh, short, world-traversable directory under /tmp.

    Short because unix socket paths are limited to 107 bytes; under /tmp and mode 755 because
    unprivileged daemon users (dovenull, postfix, mail uid 5000) must traverse it, which
    pytest's tmp_path (below a 0700 directory) does not allow.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path
