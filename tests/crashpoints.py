"""Crash-point enumeration (after SQLite's crash tests): run the real `mailcli` under
strace, learn how many of each I/O system call a small run makes, then kill a fresh run
at the N-th occurrence of each, for every N (or a deterministic stratified subset).

`strace -e inject=SYSCALL:signal=SIGKILL:when=N` delivers the signal on entry to the
N-th call, so the call itself never happens: every point between two system calls of
the process is reached, with no hook in mailcli. strace counts per system call and per
traced process, so mailcli is traced without `-f`: only its own calls are counted and
killed, never an MDA's. (`--seccomp-bpf` would be faster but disables the injection.)
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import MAILCLI

STRACE = shutil.which("strace")
# Everything that changes a file or a file system's view of it, and the socket writes.
FILE_SYSCALLS = (
    "write",
    "pwrite64",
    "writev",
    "fsync",
    "fdatasync",
    "syncfs",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "ftruncate",
    "truncate",
    "link",
    "linkat",
    "copy_file_range",
    "sendfile",
)
SOCKET_SYSCALLS = ("sendto", "sendmsg")
CRASH_SYSCALLS = FILE_SYSCALLS + SOCKET_SYSCALLS
KILLED = (-9, 137)
# sysexits mailcli documents; 70 (a bug) is never an acceptable answer.
DOCUMENTED_EXITS = frozenset({0, 64, 65, 66, 67, 68, 69, 73, 74, 75, 76, 77, 78})
_CALL = re.compile(r"^(?:\d+ +)?(\w+)\((.*)$")


@dataclass(frozen=True)
class CrashPoint:
    """Kill at the n-th `syscall`; `label` is how the counting run saw that call."""

    syscall: str
    n: int
    label: str = ""

    def __str__(self) -> str:
        return f"{self.syscall}#{self.n} [{self.label[:70]}]"


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: bytes

    @property
    def killed(self) -> bool:
        return self.code in KILLED


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A private HOME/XDG tree; no .pyc writes (they would be crash points of their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILCLI_", "XDG_", "DBUS_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    env.update(extra)
    return env


def _strace(
    *,
    trace: Sequence[str],
    inject: CrashPoint | None = None,
    signal: str = "SIGKILL",
    path: Path | None = None,
    log: Path | None = None,
) -> list[str]:
    assert STRACE is not None
    argv = [STRACE, "-qq", "-o", str(log or os.devnull), "-e", "trace=" + ",".join(trace)]
    if log is not None:
        argv += ["-yy", "-s", "64"]
    if inject is not None:
        argv += ["-e", f"inject={inject.syscall}:signal={signal}:when={inject.n}"]
    if path is not None:
        argv += ["-P", str(path)]
    return argv


def run(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    point: CrashPoint | None = None,
    signal: str = "SIGKILL",
    path: Path | None = None,
    input: bytes | None = None,
) -> Run:
    """`mailcli ARGS` as a process, killed at `point` when given."""
    prefix: list[str] = []
    if point is not None:
        prefix = _strace(trace=[point.syscall], inject=point, signal=signal)
        prefix += ["-P", str(path)] if path is not None else []
    done = subprocess.run(
        [*prefix, *MAILCLI, *args],
        input=input,
        capture_output=True,
        env=dict(env),
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def exit_problem(what: str, result: Run, allowed: Sequence[int] = (0,)) -> list[str]:
    """[] when `result` ended as allowed (a kill always is); 70 and tracebacks never are."""
    if result.killed or (result.code in allowed and b"Traceback" not in result.stderr):
        return []
    return [f"{what} exit {result.code}: {result.stderr.decode(errors='replace')[-240:]!r}"]


def count(
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    input: bytes | None = None,
) -> tuple[Run, list[CrashPoint]]:
    """One traced run: every occurrence of every crash syscall, in order, as points."""
    argv = [*_strace(trace=CRASH_SYSCALLS, log=log), *MAILCLI, *args]
    done = subprocess.run(
        argv, input=input, capture_output=True, env=dict(env), timeout=120, check=False
    )
    seen: Counter[str] = Counter()
    points = []
    for line in log.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if match and match.group(1) in CRASH_SYSCALLS:
            seen[match.group(1)] += 1
            points.append(CrashPoint(match.group(1), seen[match.group(1)], line))
    return Run(done.returncode, done.stdout, done.stderr), points


def select(points: Sequence[CrashPoint], budget: int | None, seed: int) -> list[CrashPoint]:
    """All points when `budget` is None; otherwise a deterministic stratified subset:
    every socket write carrying DELE or QUIT, the first and last point of each syscall,
    then a seeded random fill up to `budget`."""
    if budget is None or len(points) <= budget:
        return list(points)
    by_call: dict[str, list[CrashPoint]] = {}
    for point in points:
        by_call.setdefault(point.syscall, []).append(point)
    must = [p for p in points if re.search(r'"(DELE|QUIT)\b', p.label)]
    must += [group[i] for group in by_call.values() for i in (0, -1)]
    chosen = list(dict.fromkeys(must))
    rest = [p for p in points if p not in chosen]
    rng = random.Random(seed)
    rng.shuffle(rest)
    chosen += rest[: max(0, budget - len(chosen))]
    return sorted(chosen, key=points.index)


def budget(default: int) -> int | None:
    """Points per operation: `MAILCLI_CRASH_BUDGET` (0 = every point) or the CI default."""
    text = os.environ.get("MAILCLI_CRASH_BUDGET")
    value = default if text is None else int(text)
    return None if value == 0 else value


@dataclass
class Tally:
    """Crash points enumerated per operation, for docs/reliability.md; written as JSON."""

    path: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, operation: str, *, available: int, run: int, double: int) -> None:
        self.rows[operation] = {"crash_points": available, "run": run, "double_crashes": double}
        self.path.write_text(json.dumps(self.rows, indent=1, sort_keys=True))
        print(
            f"\ncrash points {operation}: {run} of {available} run, {double} double",
            file=sys.stderr,
        )


def fail_report(failures: Sequence[str]) -> str:
    return f"{len(failures)} crash point(s) broke an invariant:\n" + "\n".join(failures[:40])
