"""Two processes racing on one spool, each window hit deterministically, with no hook in
mailcli: one `mailcli` runs under strace, which stops it with SIGSTOP right after its
N-th call of a system call (`-e inject=SYSCALL:signal=SIGSTOP:when=N`, optionally only
calls touching one path, `-P`); while it is stopped the test runs the other process
whole, then sends SIGCONT. No timing decides which process goes first.

A stop is on the way out of the call: the N-th call has happened, the next one has not.
`steps` lists every call of a traced run that touches the queue, in order, so a test can
stop a process after each of its steps in turn.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tests import crashpoints as cp
from tests.helpers import MAILCLI

# The calls a spool operation is made of: opening and locking a message, writing and
# syncing files, renaming, linking and unlinking names.
STEP_SYSCALLS = (
    "openat",
    "flock",
    "write",
    "fsync",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
)
_CALL = re.compile(r"^(\w+)\((.*)$")
_STOPPED = "--- stopped by SIGSTOP ---"
WAIT = 120.0  # generous: a stop is waited for as an event, never timed
LIVE: list[Paused] = []  # not yet resumed: `abandon_all` ends them after a failed test


@dataclass(frozen=True)
class Step:
    """Stop after the n-th `syscall` (counting only calls on `path` when given)."""

    syscall: str
    n: int
    label: str = ""
    path: str | None = None

    def __str__(self) -> str:
        return f"{self.syscall}#{self.n} [...{self.label[-90:]}]"


def steps(
    args: Sequence[str], env: Mapping[str, str], log: Path, *, input: bytes | None = None
) -> tuple[cp.Run, list[Step]]:
    """One traced run of `mailcli ARGS`: each call in STEP_SYSCALLS that touches the queue
    (its folder, an entry, a temporary, the lock, failed/), numbered per system call."""
    assert cp.STRACE is not None
    trace = ["-qq", "-yy", "-s", "64", "-o", str(log), "-e", "trace=" + ",".join(STEP_SYSCALLS)]
    done = subprocess.run(
        [cp.STRACE, *trace, *MAILCLI, *args],
        input=input,
        capture_output=True,
        env=dict(env),
        timeout=WAIT,
        check=False,
    )
    seen: Counter[str] = Counter()
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if not match or match.group(1) not in STEP_SYSCALLS:
            continue
        seen[match.group(1)] += 1
        if "/mailcli/queue" in line and not line.startswith(("write(1<", "write(2<")):
            found.append(Step(match.group(1), seen[match.group(1)], line))
    return cp.Run(done.returncode, done.stdout, done.stderr), found


def spread(items: Sequence[Step], budget: int | None) -> list[Step]:
    """All of them (budget None), else `budget` spread evenly, first and last included."""
    if budget is None or len(items) <= budget:
        return list(items)
    if budget == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (budget - 1))] for i in range(budget)]


class Paused:
    """`mailcli ARGS` started under strace and stopped after `step`; `reached` says
    whether it got there (a run that ends first simply runs whole)."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        step: Step,
        log: Path,
        *,
        input: bytes | None = None,
    ) -> None:
        assert cp.STRACE is not None
        self.log = log
        log.unlink(missing_ok=True)
        argv = [cp.STRACE, "-qq", "-o", str(log), "-e", f"trace={step.syscall}"]
        argv += ["-e", f"inject={step.syscall}:signal=SIGSTOP:when={step.n}"]
        argv += ["-P", step.path] if step.path else []
        self.process = subprocess.Popen(
            [*argv, *MAILCLI, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        assert self.process.stdin is not None
        self.process.stdin.write(input or b"")  # small: fits the pipe, never blocks
        self.process.stdin.close()
        self.process.stdin = None  # communicate() must not flush it again
        LIVE.append(self)
        self.reached = self._wait_for_stop()

    def _wait_for_stop(self) -> bool:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.log.exists() and _STOPPED in self.log.read_text(errors="replace"):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.01)
        raise AssertionError(f"never stopped nor ended: {self.log.read_text()[-400:]}")

    def resume(self) -> cp.Run:
        """Let the stopped process go on, and wait for its end."""
        LIVE.remove(self)
        if self.reached:
            os.kill(self._tracee(), signal.SIGCONT)
        stdout, stderr = self.process.communicate(timeout=WAIT)
        return cp.Run(self.process.returncode, stdout, stderr)

    def abandon(self) -> None:
        """Kill a process a failed test left stopped (SIGKILL ends even a stopped one)."""
        if self.process.poll() is None:
            with suppress(OSError, ValueError):
                os.kill(self._tracee(), signal.SIGKILL)
            self.process.kill()
        self.process.communicate(timeout=WAIT)

    def _tracee(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        (pid,) = children.read_text().split()
        return int(pid)


def abandon_all() -> None:
    """End every process a failed test left stopped."""
    while LIVE:
        LIVE.pop().abandon()
