"""Error-point enumeration: the crash points' counted run (tests/crashpoints.py) with a
failing call instead of a kill. `strace -e inject=SYSCALL:error=ENOSPC:when=N` (or EIO)
makes the N-th call fail without doing anything, as a full or failing disk would; the
run must end with its documented status (73/74/75, never 70, never a traceback), leave
no temporary file, lose nothing, and with the disk back a rerun completes exactly once.

Only calls on files mailcli itself writes are failed: by the counting run's `strace -yy`
label, a path under the case's own folder (its HOME, destination, queue, locks and
temporary files), never stdout/stderr, a socket (another family) or the MDA's pipe.
Besides the crash points' calls, the enumeration counts `openat` (opens that create or
write), `close` and `mkdir`; a call is failed only if it succeeded in the counting run
(an `mkdir` of an existing folder answers EEXIST before a disk could run out of space).
ENOSPC only where a disk can run out of space (writes, syncs, creates, renames, links,
mkdir); EIO at every such call, plus unlink, ftruncate and close.

Short writes are real ones: the case runs on its own tmpfs, shrunk to leave exactly K
free pages, for every K from none to what the run needs (`fill_levels`), so the write
that runs out of space is cut where the kernel cuts it; then it is grown again for the
rerun. (`inject=write:retval=N` is no short write: strace skips the call, so nothing
would be written while N bytes are reported, and a program that rightly writes the rest
would leave a file missing its first N bytes.)
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.servers import require

ERROR_SYSCALLS = (*cp.CRASH_SYSCALLS, "openat", "close", "mkdir", "mkdirat")
# Calls a full disk can fail; EIO can fail every call counted here.
_NEED_SPACE = frozenset(
    {
        "write",
        "pwrite64",
        "writev",
        "fsync",
        "fdatasync",
        "syncfs",
        "rename",
        "renameat",
        "renameat2",
        "link",
        "linkat",
        "openat",
        "mkdir",
        "mkdirat",
        "copy_file_range",
        "sendfile",
    }
)
ERRORS = ("ENOSPC", "EIO")
# A full or failing disk is 74; a file or folder that cannot be created 73; 75 when a
# message could not be handed over and waits in the queue (sendmail).
ERROR_EXITS = (73, 74, 75)
_WRITING_OPEN = re.compile(r"O_(?:WRONLY|RDWR|CREAT)")
_INJECTED = "(INJECTED)"


@dataclass(frozen=True)
class ErrorPoint:
    """The `point.n`-th `point.syscall` fails with `error` (an errno name)."""

    point: cp.CrashPoint
    error: str

    def __str__(self) -> str:
        return f"{self.error} at {self.point}"


_RESULT_FD = re.compile(r"\) += (\d+)<")
_CLOSED_FD = re.compile(r"^close\((\d+)<")


def targets(points: Sequence[cp.CrashPoint], root: Path) -> list[cp.CrashPoint]:
    """The calls on a file under `root` that succeeded in the counting run: opens that
    create or write, and the close of a descriptor so opened (reading cannot fail for a
    full disk, and a close after reading has nothing to write back)."""
    writing: dict[str, bool] = {}  # descriptor -> opened to write, as the run goes
    chosen = []
    for point in points:
        label = point.label
        ours = f"{root}/" in label and " = -1 " not in label
        if point.syscall == "openat" and (opened := _RESULT_FD.search(label)):
            writing[opened.group(1)] = bool(_WRITING_OPEN.search(label))
            ours = ours and writing[opened.group(1)]
        elif closed := _CLOSED_FD.match(label):
            ours = ours and writing.pop(closed.group(1), True)
        if ours:
            chosen.append(point)
    return chosen


def errors_for(point: cp.CrashPoint) -> tuple[str, ...]:
    return ERRORS if point.syscall in _NEED_SPACE else ("EIO",)


def error_class(point: cp.CrashPoint, by_call: bool = False) -> str:
    """What the call touches, as the crash points class it, except that every mkdir is
    one class (the folders of one path) and an unnamed temporary is one whatever its
    inode; `by_call`: and which system call (for a run of one phase, where the phases
    cannot tell its steps apart)."""
    if point.syscall.startswith("mkdir"):
        return "mkdir"
    what = "unnamed temporary" if point.what.startswith("other #") else point.what
    return f"{what} {point.syscall}" if by_call else what


def select(
    points: Sequence[cp.CrashPoint],
    root: Path,
    budget: int | None,
    seed: int,
    *,
    by_call: bool = False,
) -> list[ErrorPoint]:
    """Every error at every target when `budget` is None. Otherwise one error per call
    (ENOSPC where the disk can be full, else EIO: both take the same path through the
    code, one errno to status mapping) at the class boundaries: the first and last call
    of each class (`error_class`) in each phase, plus a seeded fill up to `budget`."""
    chosen = set(targets(points, root))
    if budget is None:
        return [ErrorPoint(p, e) for p in points if p in chosen for e in errors_for(p)]
    edges = cp.boundaries(points, key=lambda p: error_class(p, by_call) if p in chosen else None)
    picked = cp.select([p for p in points if p in chosen], budget, seed, chosen=edges)
    return [ErrorPoint(p, errors_for(p)[0]) for p in picked]


def boundary_count(points: Sequence[cp.CrashPoint], root: Path, *, by_call: bool = False) -> int:
    return len(select(points, root, 0, 0, by_call=by_call))


Count = Callable[[], tuple[Path, list[cp.CrashPoint]]]
Case = Callable[[int, ErrorPoint], list[str]]


def enumerate_errors(
    name: str, count: Count, case: Case, budget: int | None, invariants: list[str], report: Path
) -> None:
    """Run `case` at the chosen error points of the counted run (`count` returns the
    folder it ran in and the points), `cp.jobs()` at a time: each case has its own home
    (and tells its messages apart from the others'); record the numbers. These runs
    have one phase: its classes are (target, system call)."""
    require("strace")
    root, points = count()
    chosen = select(points, root, budget, seed=len(points), by_call=True)

    def one(numbered: tuple[int, ErrorPoint]) -> list[str]:
        return [f"{numbered[1]}: {found}" for found in case(*numbered)]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    row = {"error_points": len(select(points, root, None, 0))}
    row |= {"boundaries": boundary_count(points, root, by_call=True), "run": len(chosen)}
    record(name, {**row, "invariants": invariants}, report)
    assert not failures, fail_report(failures)


def fail_at(
    where: ErrorPoint,
    args: Sequence[str],
    env: dict[str, str],
    log: Path,
    *,
    input: bytes | None = None,
    usual: int = 0,
) -> tuple[cp.Run, list[str]]:
    """Run with the call failing; [] as problems when it failed and the run ended with a
    documented status with a `mailcli: error:` line, or with its `usual` status (the
    failed call was not needed: a lock's close, say)."""
    result = cp.run(args, env, point=where.point, error=where.error, log=log, input=input)
    hit = [line for line in log.read_text(errors="replace").splitlines() if _INJECTED in line]
    if not hit:
        return result, [f"not reached (exit {result.code}): the call count is not deterministic"]
    if f"{env['HOME']}/" not in hit[0]:  # another call came first: the counts moved
        return result, [f"the count moved (a .pyc written meanwhile?): failed {hit[0][:90]}"]
    return result, exit_problems("failed run", result, (*ERROR_EXITS, usual))


def exit_problems(what: str, result: cp.Run, allowed: Sequence[int] = ERROR_EXITS) -> list[str]:
    """A documented status, said in a `mailcli: error:` line when it is an error (a
    queue run reports each refused entry in one too), never a traceback."""
    problems = cp.exit_problem(what, result, [0, *allowed])
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    said = any(line.startswith("mailcli: error:") for line in lines)
    if not problems and result.code != 0 and not said:
        problems.append(f"{what} exit {result.code} without an error line: {lines[-3:]!r}")
    return problems


# Hidden temporaries (`.NAME.HEX.part`), Maildir tmp/ files, an MDA spool file given a
# name, a lock's temporary: none may outlive the run that made it.
_TEMPORARY = re.compile(r"\.part$|^\.[^/]*\.[0-9a-f]{16}(\.|$)")


def leftovers(
    root: Path, keep: Callable[[Path], bool] = lambda _: False, where: ErrorPoint | None = None
) -> list[str]:
    """Temporary files under `root`: a hidden `.part` anywhere, a file in a Maildir's
    tmp/, except those `keep` names (another program's) and the very file whose unlink
    was failed (it cannot go)."""
    found = []
    for path in root.rglob("*"):
        ours = _TEMPORARY.search(path.name) or (path.parent.name == "tmp" and path.is_file())
        if not ours or keep(path) or (where and _unlinked(where, path)):
            continue
        found.append(str(path.relative_to(root)))
    return [f"temporary file left: {name}" for name in sorted(found)]


def _unlinked(where: ErrorPoint, path: Path) -> bool:
    """Whether the failed call was the unlink of a file like `path`: the same class of
    target (the counting run's names differ from this case's: its folder, its user,
    its random part)."""
    if not where.point.syscall.startswith("unlink"):
        return False
    return cp.classify(f'unlink("{path}")') == where.point.what


# ---- short writes: a tmpfs that runs out at each page ----------------------------------

PAGE = 4096


def _mount(path: Path, options: str, *, remount: bool = False) -> None:
    flag = ["-o", f"remount,{options}"] if remount else ["-t", "tmpfs", "-o", options]
    subprocess.run(["mount", *flag, "tmpfs", str(path)], check=True, capture_output=True)


def used_pages(path: Path) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize // PAGE


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    """A private tmpfs at `path` (64 MiB until `leave_free` shrinks it), unmounted after."""
    path.mkdir(parents=True)
    _mount(path, "size=64m,mode=0700")
    # Never empty: a tmpfs of size 0 has no limit at all (and cannot get one back).
    (path / ".filler").write_bytes(b"\0" * PAGE)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def leave_free(disk: Path, pages: int | None) -> None:
    """Shrink the tmpfs to what it holds plus `pages` free pages (None: 64 MiB again)."""
    size = "64m" if pages is None else f"{(used_pages(disk) + pages) * PAGE // 1024}k"
    _mount(disk, f"size={size}", remount=True)


def fill_levels(needed: int, budget: int | None) -> list[int]:
    """The free-page counts to run at: every one below `needed` (the pages a whole run
    takes), or with a budget the first, the last and evenly spread ones between."""
    levels = list(range(needed))
    if budget is None or len(levels) <= max(budget, 2):
        return levels
    step = (len(levels) - 1) / (max(budget, 2) - 1)
    return sorted({levels[round(i * step)] for i in range(max(budget, 2))})


def record(operation: str, row: Mapping[str, object], folder: Path) -> None:
    """`cp.record` under a name of its own: the crash points' rows sit in the same file
    (`MAILCLI_CRASH_REPORT`) under the operation's plain name."""
    cp.record(f"errors: {operation}", row, folder / "errorpoints.json")


def fail_report(failures: Sequence[str]) -> str:
    return f"{len(failures)} error point(s) broke an invariant:\n" + "\n".join(failures[:40])


def defect(reason: str) -> pytest.MarkDecorator:
    """A known defect the enumeration finds, being fixed: the test must fail until then."""
    return pytest.mark.xfail(strict=True, reason=reason)
