"""Crash points of `fetch --filter` (tests/crashpoints.py): the filter's TOPs, the DELEs
of what it deletes unread, the downloads of what it delivers.

Each case: a fresh Dovecot user with 12 messages, a Maildir holding foreign mail
(tests/fetchcases.py), and a filter that deletes messages 1, 4, 7 and 10, leaves 5 on
the server and delivers the rest. The run is killed at every class boundary of its
system calls (every socket write carrying DELE or QUIT, the first and last of each kind
of write in each batch; every point under `soak`), then a run completes. After every
point: nothing the filter did not delete is lost, what it delivers is in the Maildir
exactly once, what it deletes or skips never is, and the next run fetches nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.fetchcases import MESSAGES, Case, adding_users, fetches_nothing, server_message
from tests.servers import require
from tests.servers.dovecot import Dovecot

DELETED = frozenset({1, 4, 7, 10})
SKIPPED = frozenset({5})
DELIVERED = frozenset(range(MESSAGES)) - DELETED - SKIPPED
FILTER = """#!/bin/sh
n=$(sed -n 's/^Subject: crash //p')
case " {deleted} " in *" $n "*) exit 1 ;; esac
case " {skipped} " in *" $n "*) exit 2 ;; esac
exit 0
"""


def prepared(dovecot: Dovecot, root: Path, *, delete: bool) -> tuple[Case, list[str]]:
    with adding_users:
        case = Case(dovecot, root, "maildir", delete=delete)
    script = root / "filter"
    words = {
        "deleted": " ".join(map(str, sorted(DELETED))),
        "skipped": " ".join(map(str, sorted(SKIPPED))),
    }
    script.write_text(FILTER.format(**words))
    script.chmod(0o700)
    return case, [*case.args, "--filter", str(script)]


def lost(case: Case) -> list[str]:
    """Gone from the server: only what the filter deletes, or what is delivered."""
    have = set(case.delivered())
    gone = {n for n in range(MESSAGES) if server_message(n) not in set(case.on_server())}
    missing = [n for n in gone - DELETED if server_message(n) not in have]
    return [f"deleted on the server but not delivered: messages {missing}"] if missing else []


def completed(case: Case, args: list[str]) -> list[str]:
    final = cp.run([*args, "--json"], case.env)
    if final.code != 0:
        return cp.exit_problem("completion run", final)
    problems = lost(case)
    got = Counter(case.delivered())
    wrong = [n for n in range(MESSAGES) if got[server_message(n)] != (n in DELIVERED)]
    if wrong or any(got[data] != 1 for data in case.foreign):
        problems.append(f"delivered wrongly (none or twice, or judged otherwise): {wrong}")
    if sum(got.values()) != len(DELIVERED) + len(case.foreign):
        problems.append(f"{sum(got.values())} messages in the Maildir")
    left = {n for n in range(MESSAGES) if server_message(n) in set(case.on_server())}
    if left != (set(SKIPPED) if case.delete else set(range(MESSAGES)) - DELETED):
        problems.append(f"left on the server: {sorted(left)}")
    return problems + fetches_nothing(case, args)


def enumerate_crashes(dovecot: Dovecot, tmp_path: Path, *, delete: bool, every: bool) -> None:
    require("strace")
    probe, args = prepared(dovecot, tmp_path / "count", delete=delete)
    counted, points = cp.count(args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    chosen = points if every else cp.boundaries(points)
    assert sum(p.what == "socket DELE" for p in chosen) >= 1, [str(p) for p in points]

    def one(numbered: tuple[int, cp.CrashPoint]) -> list[str]:
        index, point = numbered
        case, args = prepared(dovecot, tmp_path / f"p{index}", delete=delete)
        killed = cp.run(args, case.env, point=point)
        if not killed.killed:
            return [f"{point}: not reached (exit {killed.code}) {killed.stderr[-600:]!r}"]
        return [f"{point}: {p}" for p in lost(case) + completed(case, args)]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    operation = f"fetch --filter{' --delete' if delete else ''}"
    row = {"crash_points": len(points), "run": len(chosen)}
    cp.record(operation, row, tmp_path / "cp.json")
    assert not failures, cp.fail_report(failures)


@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
def test_a_kill_at_each_step_of_a_filtered_fetch_loses_and_duplicates_nothing(
    dovecot: Dovecot, tmp_path: Path, delete: bool
) -> None:
    enumerate_crashes(dovecot, tmp_path, delete=delete, every=False)


@pytest.mark.soak
@pytest.mark.parametrize("delete", [False, True], ids=["keep", "delete"])
def test_a_kill_at_every_crash_point_of_a_filtered_fetch(
    dovecot: Dovecot, tmp_path: Path, delete: bool
) -> None:
    enumerate_crashes(dovecot, tmp_path, delete=delete, every=True)
