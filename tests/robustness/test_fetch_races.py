"""Interleavings: two processes race on the fetch lock, the fetch state and the mbox
lock, with one of them held still at each step of the other.

Process A (`fetch --delete`, 12 messages in batches of 4, as in test_crashpoints.py) is
stopped by strace on entry to its N-th I/O system call (`-e inject=SYSCALL:signal=
SIGSTOP:when=N`, the crash points of tests/crashpoints.py); the test sees the stop in
strace's log, runs process B to its end, then lets A go on (SIGCONT). So every window
between two steps of A is hit exactly, whatever the machine's speed. B is:
- the same fetch of the same account: 75 naming the lock's holder while A holds the
  fetch lock, never a second delivery;
- `fetch --dry-run` of the same account (no lock; it reads the state A is writing):
  always 0, never "damaged" (78) or a crash;
- another account's fetch into the same mbox (`--timeout 1`): 0, or 75 after waiting
  for the mbox's locks while A holds them, with nothing written.
Then A must finish (0), a last run of each account fetches nothing, every message is in
the destination exactly once and the server deleted only what was delivered.

The default run takes the class boundaries of A's points (`crashpoints.boundaries`);
`-m soak` (or MAILCLI_CRASH_BUDGET=0) takes every point.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.fetchcases import MESSAGES, Case, adding_users, check, server_message
from tests.helpers import MAILCLI
from tests.servers import require
from tests.servers.dovecot import Dovecot


def new_case(dovecot: Dovecot, root: Path, kind: str) -> Case:
    with adding_users:
        return Case(dovecot, root, kind, delete=True)


def stopped(case: Case, point: cp.CrashPoint, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A: `case`'s fetch, stopped on entry to `point`; its PID, or 0 when it ended
    without reaching it (then the race is with a finished run)."""
    assert cp.STRACE is not None
    inject = f"inject={point.syscall}:signal=SIGSTOP:when={point.n}"
    argv = [cp.STRACE, "-qq", "-o", str(log), "-e", f"trace={point.syscall}", "-e", inject]
    process = subprocess.Popen(
        [*argv, *MAILCLI, *case.args],
        env=case.env,
        cwd=cp.PACKAGE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    while "--- stopped by SIGSTOP ---" not in (log.read_text() if log.exists() else ""):
        if process.poll() is not None:
            return process, 0
    (line,) = [line for line in log.read_text().splitlines() if "stopped by SIGSTOP" in line]
    return process, int(line.split()[0]) if line.split()[0].isdigit() else _tracee(process)


def _tracee(strace: subprocess.Popen[bytes]) -> int:
    """The traced mailcli (strace's one child still alive, not a probe of its own)."""
    for pid in Path(f"/proc/{strace.pid}/task/{strace.pid}/children").read_text().split():
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"mailcli" in argv and not argv[0].endswith(b"strace"):
            return int(pid)
    raise AssertionError("mailcli is not running under strace")


def resumed(process: subprocess.Popen[bytes], pid: int) -> cp.Run:
    if pid:
        os.kill(pid, signal.SIGCONT)
    out, err = process.communicate(timeout=120)
    return cp.Run(process.returncode, out, err)


@dataclass
class Racer:
    """Process B of one race (run while A is stopped) and, when the race has more than
    the usual checks (`test_crashpoints.check`), what to check at the end instead."""

    b: Callable[[], cp.Run]
    judge: Callable[[cp.Run], list[str]]
    finish: Callable[[], list[str]] | None = None


def same_account(case: Case, root: Path) -> Racer:
    """B: the same fetch. While A holds the fetch lock: 75, naming A."""

    def judge(run: cp.Run) -> list[str]:
        if run.code == 75 and b"another fetch for this account is running" in run.stderr:
            return []
        return cp.exit_problem("same-account fetch during A", run)

    return Racer(lambda: cp.run(case.args, case.env), judge)


def dry_run(case: Case, root: Path) -> Racer:
    """B: `--dry-run` (reads the state without a lock): 0 at every step of A."""
    return Racer(
        lambda: cp.run([*case.args, "--dry-run"], case.env),
        lambda run: cp.exit_problem("dry run during A", run),
    )


def other_account(case: Case, root: Path) -> Racer:
    """B: another account's fetch into A's mbox, waiting at most 1 s for its locks."""
    other = new_case(case.dovecot, root / "other", "mbox")
    other.dest, other.foreign = case.dest, []  # A's mbox, A's foreign mail

    def judge(run: cp.Run) -> list[str]:
        if run.code == 75 and b"(waited 1 s)" in run.stderr:
            return []
        return cp.exit_problem("other account into the same mbox", run)

    def finish() -> list[str]:
        problems = cp.exit_problem("the other account's last run", cp.run(other.args, other.env))
        got = Counter(case.delivered())
        counts = [got[server_message(n)] for n in range(MESSAGES)]
        if counts != [2] * MESSAGES:  # once for each account
            problems.append(f"server messages delivered {counts} times (two accounts)")
        problems += [f"foreign message lost: {f[:30]!r}" for f in case.foreign if got[f] != 1]
        if other.on_server() or case.on_server():
            problems.append("messages left on a server")
        return problems

    return Racer(lambda: cp.run([*other.args, "--timeout", "1"], other.env), judge, finish)


# race -> (A's destination, B)
RACES: dict[str, tuple[str, Callable[[Case, Path], Racer]]] = {
    "fetch lock": ("maildir", same_account),
    "fetch state": ("mbox", dry_run),
    "mbox lock": ("mbox", other_account),
}


def race_at(dovecot: Dovecot, root: Path, race: str, point: cp.CrashPoint) -> tuple[list[str], str]:
    """One interleaving: A stopped at `point`, B run to its end, A resumed; the checks,
    and what B did (its exit, or that A had ended before reaching the point)."""
    kind, make = RACES[race]
    case = new_case(dovecot, root / "a", kind)
    racer = make(case, root)
    process, pid = stopped(case, point, root / "strace.log")
    during = racer.b()
    problems = racer.judge(during)
    problems += cp.exit_problem("A after B", resumed(process, pid))
    last = cp.run([*case.args, "--json"], case.env)
    problems += cp.exit_problem("A's last run", last)
    if last.code == 0 and b'"fetched": 0' not in last.stdout:
        problems.append(f"A's last run fetched again: {last.stdout[:80]!r}")
    problems += racer.finish() if racer.finish else check(case, crashes=0)
    outcome = f"B exit {during.code}" if pid else "A ended first"
    return [f"{point} ({outcome}): {p}" for p in problems], outcome


def enumerate_race(dovecot: Dovecot, tmp_path: Path, race: str, budget: int | None) -> None:
    require("strace")
    kind, _ = RACES[race]
    probe = new_case(dovecot, tmp_path / "probe", kind)
    counted, points = cp.count(probe.args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    chosen = cp.select(points, budget, seed=len(points))
    numbered = list(enumerate(chosen))
    results = cp.map_cases(
        lambda item: race_at(dovecot, tmp_path / f"p{item[0]}", race, item[1]), numbered
    )
    failures = [problem for problems, _ in results for problem in problems]
    outcomes = Counter(outcome for _, outcome in results)
    row = {"points": len(points), "raced": len(chosen), **dict(sorted(outcomes.items()))}
    cp.record(f"race: {race}", row, tmp_path / "races.json")
    assert not failures, cp.fail_report(failures)


@pytest.mark.parametrize("race", list(RACES))
def test_two_processes_race_at_every_class_boundary(
    dovecot: Dovecot, tmp_path: Path, race: str
) -> None:
    enumerate_race(dovecot, tmp_path, race, cp.budget())


@pytest.mark.soak
@pytest.mark.parametrize("race", list(RACES))
def test_two_processes_race_at_every_step(dovecot: Dovecot, tmp_path: Path, race: str) -> None:
    enumerate_race(dovecot, tmp_path, race, None)
