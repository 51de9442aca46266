"""Crash points and error points of fetch's retention writes (tests/crashpoints.py,
tests/errorpoints.py): the rewrite of a version 3 or 2 fetch state as version 4, a
`--delete-after` run over records aged by the test, and `--mark-seen`'s record.

Each case: a fresh Dovecot user with 12 messages and a Maildir holding foreign mail
(tests/fetchcases.py); for the upgrades and `--delete-after`, a first fetch of 6 of
them, its state then turned into an older version or aged 2 days. The run under test
(`--delete-after 1`, or `--mark-seen`) is killed at every I/O system call on the fetch
state, every socket write carrying DELE or QUIT (and, under `soak`, every point), then
the recovery run is killed at its first rename (inside the migration when it is redone,
or the first record of `--mark-seen`), then a run completes. Or the call fails with
ENOSPC or EIO instead, then a run completes with the disk back. After every point:
nothing lost, nothing fetched twice, nothing deleted on the server that was not stored
a day ago (the upgraded UIDs count from the upgrade), and `--mark-seen` downloads
nothing: the next fetch gets only newer mail."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import errorpoints as ep
from tests.fetchcases import (
    MESSAGES,
    Case,
    adding_users,
    check,
    fetches_nothing,
    lost_by_server,
    rewrite_state,
    server_message,
)
from tests.servers import require
from tests.servers.dovecot import Dovecot

FIRST_FETCH = 6  # messages fetched before the run under test
RECOVERY_CRASH = cp.CrashPoint("rename", 1)
NEWER = b"Subject: newer\n\nafter --mark-seen\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    args: tuple[str, ...]  # the run under test: the case's fetch plus these
    version: int | None  # the state the first fetch leaves (None: no first fetch)
    age_days: float  # how much older its records are made
    kept: range  # server messages that must never be deleted

    @property
    def deleted(self) -> range:
        """The messages the completed runs delete (stored 2 days before)."""
        return range(FIRST_FETCH) if self.age_days > 1 else range(0)


SCENARIOS = [
    Scenario("v3 state upgraded", ("--delete-after", "1"), 3, 0, range(MESSAGES)),
    Scenario("v2 state upgraded", ("--delete-after", "1"), 2, 0, range(MESSAGES)),
    Scenario("--delete-after", ("--delete-after", "1"), 4, 2, range(FIRST_FETCH, MESSAGES)),
    Scenario("--mark-seen", ("--mark-seen",), None, 0, range(MESSAGES)),
]
INVARIANTS = [
    "every server message in the destination once, byte-identical; foreign mail kept",
    "nothing deleted on the server that was not stored DAYS ago (upgraded UIDs: from the "
    "upgrade), nothing deleted that was not delivered and recorded",
    "--mark-seen downloads nothing; the next fetch gets only newer mail",
    "documented exits only (never 70), the next run fetches nothing",
]


def prepared(dovecot: Dovecot, root: Path, scenario: Scenario) -> Case:
    with adding_users:
        case = Case(dovecot, root, "maildir", delete=False)
    if scenario.version is not None:
        first = cp.run([*case.args, "--limit", str(FIRST_FETCH)], case.env)
        assert first.code == 0, first.stderr
        rewrite_state(case, version=scenario.version, age_days=scenario.age_days)
    return case


def deleted_early(case: Case, scenario: Scenario) -> list[str]:
    on_server = set(case.on_server())
    early = [n for n in scenario.kept if server_message(n) not in on_server]
    problems = [f"deleted though not stored a day ago: messages {early}"] if early else []
    return problems + lost_by_server(case)


def completed(case: Case, scenario: Scenario) -> list[str]:
    """A run completes; the invariants hold."""
    args = [*case.args, *scenario.args]
    final = cp.run([*args, "--json"], case.env)
    if final.code != 0:
        return cp.exit_problem("completion run", final)
    problems = deleted_early(case, scenario)
    if scenario.version is None:
        return problems + _only_newer_mail(case)
    problems += fetches_nothing(case, args)
    problems += [p for p in check(case, crashes=0) if "left on the server" not in p]
    left = {server_message(n) for n in range(MESSAGES) if n not in scenario.deleted}
    if set(case.on_server()) != left:
        problems.append(f"{len(case.on_server())} message(s) on the server, not {len(left)}")
    return problems


def _only_newer_mail(case: Case) -> list[str]:
    """After --mark-seen: nothing was downloaded; a fetch gets only a newer message."""
    if Counter(case.delivered()) != Counter(case.foreign):
        return [f"--mark-seen delivered {len(case.delivered()) - len(case.foreign)} message(s)"]
    case.dovecot.drop_message(case.user, NEWER)
    fetched = cp.run([*case.args, "--json"], case.env)
    if fetched.code != 0 or json.loads(fetched.stdout)["fetched"] != 1:
        return [f"the fetch after --mark-seen: exit {fetched.code}, {fetched.stdout[:80]!r}"]
    if Counter(case.delivered()) != Counter([*case.foreign, NEWER]):
        return ["the fetch after --mark-seen did not deliver exactly the newer message"]
    return [] if len(case.on_server()) == MESSAGES + 1 else ["--mark-seen deleted mail"]


def crash_case(
    case: Case, scenario: Scenario, point: cp.CrashPoint, doubles: list[bool]
) -> list[str]:
    args = [*case.args, *scenario.args]
    first = cp.run(args, case.env, point=point)
    if not first.killed:
        return [f"not reached (exit {first.code}): the syscall count is not deterministic"]
    problems = deleted_early(case, scenario)
    second = cp.run(args, case.env, point=RECOVERY_CRASH)
    doubles.append(second.killed)
    problems += cp.exit_problem("recovery run", second, sorted(cp.DOCUMENTED_EXITS))
    return problems + deleted_early(case, scenario) + completed(case, scenario)


def count_moved(problems: list[str]) -> bool:
    """The run did not reach the counted call: another process refreshed a .pyc of the
    shared checkout between the count and the run (Python then opens other files)."""
    return any("not reached" in p or "the count moved" in p for p in problems)


def recounted(
    dovecot: Dovecot, root: Path, scenario: Scenario, point: cp.CrashPoint, old: list[cp.CrashPoint]
) -> cp.CrashPoint:
    """The same call (the same ordinal among calls of its kind on its target) in a
    fresh count."""
    probe = prepared(dovecot, root, scenario)
    syscalls = sorted({p.syscall for p in old})
    _, points = cp.count(
        [*probe.args, *scenario.args], probe.env, root / "count.log", syscalls=syscalls
    )
    ordinal = [p for p in old if (p.syscall, p.what) == (point.syscall, point.what)].index(point)
    return [p for p in points if (p.syscall, p.what) == (point.syscall, point.what)][ordinal]


def chosen_crash_points(points: list[cp.CrashPoint], every: bool) -> list[cp.CrashPoint]:
    if every:
        return points
    steps = ("socket DELE", "socket QUIT")
    return [p for p in points if p.what.startswith("fetch state") or p.what in steps]


def enumerate_crashes(dovecot: Dovecot, tmp_path: Path, scenario: Scenario, every: bool) -> None:
    require("strace")
    probe = prepared(dovecot, tmp_path / "count", scenario)
    counted, points = cp.count([*probe.args, *scenario.args], probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    chosen = chosen_crash_points(points, every)
    assert any(p.what.startswith("fetch state") for p in chosen), [str(p) for p in points]
    doubles: list[bool] = []

    def one(numbered: tuple[int, cp.CrashPoint]) -> list[str]:
        index, point = numbered
        case = prepared(dovecot, tmp_path / f"p{index}", scenario)
        found = crash_case(case, scenario, point, doubles)
        if count_moved(found):
            point = recounted(dovecot, tmp_path / f"r{index}", scenario, point, points)
            case = prepared(dovecot, tmp_path / f"q{index}", scenario)
            found = crash_case(case, scenario, point, doubles)
        return [f"{point}: {p}" for p in found]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    row = {"crash_points": len(points), "run": len(chosen), "double_crashes": sum(doubles)}
    cp.record(f"fetch {scenario.name}", {**row, "invariants": INVARIANTS}, tmp_path / "cp.json")
    assert not failures, cp.fail_report(failures)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_kill_at_every_state_write_of_retention_loses_and_deletes_nothing_early(
    dovecot: Dovecot, tmp_path: Path, scenario: Scenario
) -> None:
    enumerate_crashes(dovecot, tmp_path, scenario, every=False)


@pytest.mark.soak
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_kill_at_every_crash_point_of_retention(
    dovecot: Dovecot, tmp_path: Path, scenario: Scenario
) -> None:
    enumerate_crashes(dovecot, tmp_path, scenario, every=True)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_enospc_and_eio_at_every_state_write_of_retention(
    dovecot: Dovecot, tmp_path: Path, scenario: Scenario
) -> None:
    require("strace")
    probe = prepared(dovecot, tmp_path / "count", scenario)
    args = [*probe.args, *scenario.args]
    counted, points = cp.count(args, probe.env, tmp_path / "count.log", syscalls=ep.ERROR_SYSCALLS)
    assert counted.code == 0, counted.stderr
    targets = [p for p in ep.targets(points, probe.root) if p.what.startswith("fetch state")]
    chosen = [ep.ErrorPoint(p, error) for p in targets for error in ep.errors_for(p)]
    assert chosen, [str(p) for p in points]

    def fail(name: str, where: ep.ErrorPoint) -> tuple[cp.Run, list[str]]:
        case = prepared(dovecot, tmp_path / name, scenario)
        run_args = [*case.args, *scenario.args]
        failed, problems = ep.fail_at(where, run_args, case.env, tmp_path / f"{name}.log")
        if count_moved(problems):
            return failed, problems
        problems += ep.leftovers(case.root, keep=lambda p: p in case.busy, where=where)
        return failed, problems + deleted_early(case, scenario) + completed(case, scenario)

    def one(numbered: tuple[int, ep.ErrorPoint]) -> list[str]:
        index, where = numbered
        failed, problems = fail(f"p{index}", where)
        if count_moved(problems):
            point = recounted(dovecot, tmp_path / f"r{index}", scenario, where.point, points)
            where = ep.ErrorPoint(point, where.error)
            failed, problems = fail(f"q{index}", where)
        return [f"{where}: {p} (failed run exit {failed.code})" for p in problems]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    row = {"error_points": len(chosen), "invariants": INVARIANTS}
    ep.record(f"fetch {scenario.name}, the state on a full disk", row, tmp_path)
    assert not failures, ep.fail_report(failures)
