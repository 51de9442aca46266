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
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

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
# Read at import: the autouse `isolated_environment` fixture removes every MAILCLI_*
# variable before a test body runs.
SETTINGS = {k: v for k, v in os.environ.items() if k.startswith("MAILCLI_CRASH_")}


# MAILCLI_CRASH_PACKAGE=DIR runs the mailcli package in DIR (e.g. a worktree of an older
# commit) instead of this checkout's, to show what the enumeration finds there.
PACKAGE = SETTINGS.get("MAILCLI_CRASH_PACKAGE")
_CALL = re.compile(r"^(?:\d+ +)?(\w+)\((.*)$")


@dataclass(frozen=True)
class CrashPoint:
    """Kill at the n-th `syscall`; `label` is how the counting run saw that call, `what`
    the thing it touches (`classify`) and `batch` which batch it falls in (`batches`)."""

    syscall: str
    n: int
    label: str = ""
    what: str = ""
    batch: int = 0

    def __str__(self) -> str:
        return f"{self.syscall}#{self.n} (batch {self.batch}, {self.what}) [{self.label[:70]}]"


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
    if PACKAGE:
        env["PYTHONPATH"] = PACKAGE
    env.update(extra)
    return env


def _strace(
    *,
    trace: Sequence[str],
    inject: CrashPoint | None = None,
    signal: str = "SIGKILL",
    path: Path | None = None,
    log: Path | None = None,
    error: str | None = None,
) -> list[str]:
    assert STRACE is not None
    argv = [STRACE, "-qq", "-o", str(log or os.devnull), "-e", "trace=" + ",".join(trace)]
    if log is not None:
        argv += ["-yy", "-s", "64"]
    if inject is not None:
        # `error=` makes the call fail instead (the error points, tests/errorpoints.py).
        effect = f"error={error}" if error else f"signal={signal}"
        argv += ["-e", f"inject={inject.syscall}:{effect}:when={inject.n}"]
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
    error: str | None = None,
    log: Path | None = None,
) -> Run:
    """`mailcli ARGS` as a process, killed at `point` when given (or, with `error`, that
    call fails with this errno; `log` keeps strace's line of it)."""
    prefix: list[str] = []
    if point is not None:
        prefix = _strace(trace=[point.syscall], inject=point, signal=signal, log=log, error=error)
        prefix += ["-P", str(path)] if path is not None else []
    done = subprocess.run(
        [*prefix, *MAILCLI, *args],
        input=input,
        capture_output=True,
        env=dict(env),
        cwd=PACKAGE,
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
    syscalls: Sequence[str] = CRASH_SYSCALLS,
) -> tuple[Run, list[CrashPoint]]:
    """One traced run: every occurrence of every crash syscall (or of `syscalls`), in
    order, as points."""
    argv = [*_strace(trace=syscalls, log=log), *MAILCLI, *args]
    done = subprocess.run(
        argv, input=input, capture_output=True, env=dict(env), cwd=PACKAGE, timeout=120, check=False
    )
    seen: Counter[str] = Counter()
    points = []
    for line in log.read_text(errors="replace").splitlines():
        match = _CALL.match(line)
        if match and match.group(1) in syscalls:
            seen[match.group(1)] += 1
            points.append(CrashPoint(match.group(1), seen[match.group(1)], line, classify(line)))
    return Run(done.returncode, done.stdout, done.stderr), batches(points)


# What a system call touches, from its `-yy` line: the first pattern that matches the
# path it writes (the descriptor's path, else its first path argument) names it.
_TOUCHES = (
    # Only the error points (tests/errorpoints.py) write these two.
    (r"/retr-out(/|$)", "retr -o output"),
    (r"/mailcli/oauth(/|$)", "OAuth token store"),
    (r"\.uids\.[0-9a-f]+\.part$", "fetch state temporary"),
    (r"\.uids$", "fetch state"),
    (r"journal", "mbox journal"),
    (r"mbox-batch", "mbox batch file"),
    (r"/mailcli/fetch$", "fetch state folder"),
    (r"/mailcli/fetch/[^/]*\.lock$", "fetch lock"),
    (r"/queue/[^/]*\.lock$", "queue lock"),
    (r"\.lock(\.|$)", "mbox dot-lock"),
    (r"/dest/tmp(/|$)", "Maildir tmp/"),
    (r"/dest/(new|cur)(/|$)", "Maildir new/"),
    (r"/dest$", "mbox"),
    (r"/queue/failed(/|$)", "queue failed/"),
    (r"\.json(\.[0-9a-f]+\.part)?$", "queue .json"),
    (r"\.eml(\.[0-9a-f]+\.part)?$", "queue .eml"),
    (r"\.done$", "queue marker"),
    (r"/queue$", "queue folder"),
    (r"mailcli\.log$", "log"),
    (r"config\.toml", "config"),
    (r"/mailcli/config$|/mailcli$", "config folder"),
    (r"^pipe:", "MDA pipe"),
    (r"\(deleted\)$|^/tmp/#\d+$", "unnamed temporary"),
)
# Socket writes that are steps of their own; the rest (CAPA, USER, EHLO, RCPT, DATA...)
# is "session": a kill there is a connection lost before anything happened. An SMTP
# message's own bytes ("data") end with the dot the server answers 250 to.
_STEPS = ("RETR", "DELE", "QUIT", "MAIL", "data")
# (An LMTP server's unix socket shows as UNIX-STREAM.)
_SOCKET = re.compile(r'^\w+\(\d+<(?:TCP|TCPv6|UDP|UNIX|UNIX-STREAM)[:>].*?>, "([A-Za-z]*)')
_STD = re.compile(r"^write\(([12])<")
_FD_PATH = re.compile(r"^\w+\(\d+<([^>]*)>")
_ARG_PATH = re.compile(r'^\w+\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]*)"')
_BATCH_STARTS = ("socket RETR", "socket MAIL")


def classify(label: str) -> str:
    """What the call in `label` touches: a socket's command, stdout/stderr, or a file."""
    if socket := _SOCKET.match(label):
        verb = socket.group(1).upper()
        verb = verb if len(verb) == 4 else "data"  # an SMTP message's own bytes
        return f"socket {verb if verb in _STEPS else 'session'}"
    if std := _STD.match(label):
        return "stdout" if std.group(1) == "1" else "stderr"
    where = _FD_PATH.match(label) or _ARG_PATH.match(label)
    path = where.group(1) if where else ""
    for pattern, what in _TOUCHES:
        if re.search(pattern, path):
            return what
    return f"other {path.rsplit('/', 1)[-1][:30]}" if path else "other"


def batches(points: Sequence[CrashPoint]) -> list[CrashPoint]:
    """Number the batches: a POP3 batch begins at the first RETR after a record of the
    state (or the first RETR at all), an SMTP one at each MAIL; after QUIT comes the
    last one. Batch 0 is everything before."""
    batch, recorded, out = 0, True, []
    for point in points:
        if point.what == "socket RETR" and recorded:
            batch, recorded = batch + 1, False
        elif point.what in ("socket MAIL", "socket QUIT"):
            batch += 1
        elif point.what.startswith("fetch state"):
            recorded = True
        out.append(replace(point, batch=batch))
    return out


def boundaries(
    points: Sequence[CrashPoint], key: Callable[[CrashPoint], str | None] | None = None
) -> list[CrashPoint]:
    """Every socket write carrying DELE or QUIT, and the first and last point of each
    class (what it touches) in each batch: every transition from one step to the next.
    Of the batches, the first (it creates the state) and the last (then QUIT), and what
    comes before and after: the ones between repeat the last with the same state on disk
    (the soak run has them). With `key`, the classes are its values instead (None: not
    a point to choose) and no socket write is a must."""
    last = max((p.batch for p in points if p.what in _BATCH_STARTS), default=0)
    classes: dict[tuple[int, str], list[CrashPoint]] = {}
    for point in points:
        name = point.what if key is None else key(point)
        if name is not None and (point.batch <= 1 or point.batch >= last):
            classes.setdefault((point.batch, name), []).append(point)
    must = [p for p in points if key is None and p.what in ("socket DELE", "socket QUIT")]
    must += [group[i] for group in classes.values() for i in (0, -1)]
    return sorted(set(must), key=points.index)


def select(
    points: Sequence[CrashPoint],
    budget: int | None,
    seed: int,
    chosen: Sequence[CrashPoint] | None = None,
) -> list[CrashPoint]:
    """All points when `budget` is None; otherwise every class boundary (or `chosen`),
    then a seeded random fill up to `budget` points in all (the boundaries are never
    left out)."""
    if budget is None:
        return list(points)
    chosen = boundaries(points) if chosen is None else list(chosen)
    rest = [p for p in points if p not in chosen]
    random.Random(seed).shuffle(rest)
    chosen += rest[: max(0, budget - len(chosen))]
    return sorted(chosen, key=points.index)


def budget(default: int = 0) -> int | None:
    """Points per operation: `MAILCLI_CRASH_BUDGET` (0 = every point), else `default`
    (0: the class boundaries only)."""
    text = SETTINGS.get("MAILCLI_CRASH_BUDGET")
    value = default if text is None else int(text)
    return None if text is not None and value == 0 else value


_T = TypeVar("_T")
_R = TypeVar("_R")


def jobs() -> int:
    """How many crash cases run side by side: `MAILCLI_CRASH_JOBS`, else the CPU count
    (at most 4). Each case has its own server user, home and destination, and each kill
    lands at a counted system call of its own process, so running cases side by side
    changes no outcome, only the wall time."""
    text = SETTINGS.get("MAILCLI_CRASH_JOBS")
    return max(1, int(text)) if text else min(4, os.cpu_count() or 1)


def map_cases(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """`[function(item) for item in items]`, `jobs()` at a time, results in order."""
    with ThreadPoolExecutor(max_workers=jobs()) as pool:
        return list(pool.map(function, items))


def record(operation: str, row: Mapping[str, object], fallback: Path) -> None:
    """One operation's numbers for docs/reliability.md, merged into the JSON file named
    by `MAILCLI_CRASH_REPORT` (else `fallback`) and printed (seen with `-s`)."""
    path = Path(SETTINGS.get("MAILCLI_CRASH_REPORT", str(fallback)))
    rows = json.loads(path.read_text()) if path.exists() else {}
    rows[operation] = dict(row)
    path.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    numbers = ", ".join(f"{k} {v}" for k, v in row.items() if not isinstance(v, list))
    print(f"\ncrash points {operation}: {numbers}", file=sys.stderr)


def fail_report(failures: Sequence[str]) -> str:
    return f"{len(failures)} crash point(s) broke an invariant:\n" + "\n".join(failures[:40])
