"""Crash-point enumeration of `fetch` (Maildir, mbox, MDA; keep and --delete): kill the
real mailcli at every N-th I/O system call (see tests/crashpoints.py), crash its
recovery run once more, run it to completion, and check that every server message is in
the destination exactly once, byte for byte, beside every foreign byte that was there."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.fetchcases import (
    MESSAGES,
    Case,
    adding_users,
    after_recovery,
    check,
    lost_by_server,
    server_message,
)
from tests.servers import require
from tests.servers.dovecot import Dovecot

# The recovery run's crash: a fixed point inside its first batch (see the README of the
# table in docs/reliability.md): Maildir between two renames into new/, mbox at the
# first batch's fsync (after its bytes were written), MDA while feeding the first one.
RECOVERY_CRASH = {
    "maildir": (cp.CrashPoint("rename", 2), False),
    "mbox": (cp.CrashPoint("fsync", 2), True),
    "mda": (cp.CrashPoint("write", 1), False),
}


def crash_case(case: Case, point: cp.CrashPoint, index: int, doubles: list[bool]) -> list[str]:
    """Kill at `point`, let another program deliver when a batch was left unfinished (and
    at every other point), kill the recovery run at RECOVERY_CRASH, run to completion."""
    first = cp.run(case.args, case.env, point=point)
    if not first.killed:
        return [f"not reached (exit {first.code}): the syscall count is not deterministic"]
    problems = lost_by_server(case)
    if case.in_flight() or index % 2:
        case.append_foreign(f"after crash {index}")
    second_point, on_dest = RECOVERY_CRASH[case.kind]
    second = cp.run(case.args, case.env, point=second_point, path=case.dest if on_dest else None)
    return problems + after_recovery(case, second, doubles)


FETCH_INVARIANTS = [
    "every server message in the destination once (MDA: at most once more per crash)",
    "byte-identical, none truncated, no foreign bytes",
    "foreign mail (before, and delivered after the crash) kept whole",
    "another program's Maildir tmp/ file untouched",
    "the server deleted only what was delivered and recorded",
    "documented exits only (never 70), the next run fetches nothing",
]


def enumerate_fetch(
    dovecot: Dovecot,
    tmp_path: Path,
    kind: str,
    delete: bool,
    budget: int | None,
    make: type[Case] = Case,
) -> None:
    require("strace")
    probe = make(dovecot, tmp_path / "count", kind, delete)
    counted, points = cp.count(probe.args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    chosen = cp.select(points, budget, seed=len(points))
    doubles: list[bool] = []

    def one(numbered: tuple[int, cp.CrashPoint]) -> list[str]:
        index, point = numbered
        with adding_users:
            case = make(dovecot, tmp_path / f"p{index}", kind, delete)
        return [f"{point}: {p}" for p in crash_case(case, point, index, doubles)]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    name = f"fetch {kind}{' --delete' if delete else ''}"
    name += " --received-header" if make is ReceivedCase else ""
    row = {"crash_points": len(points), "boundaries": len(cp.boundaries(points))}
    row |= {"run": len(chosen), "double_crashes": sum(doubles), "every_point": budget is None}
    cp.record(name, {**row, "invariants": FETCH_INVARIANTS}, tmp_path / "crashpoints.json")
    assert not failures, cp.fail_report(failures)


FETCH_KINDS = [(k, d) for k in ("maildir", "mbox", "mda") for d in (False, True)]


@pytest.mark.parametrize(("kind", "delete"), FETCH_KINDS)
def test_fetch_survives_a_kill_at_every_class_boundary(
    dovecot: Dovecot, tmp_path: Path, kind: str, delete: bool
) -> None:
    enumerate_fetch(dovecot, tmp_path, kind, delete, cp.budget())


@pytest.mark.soak
@pytest.mark.parametrize(("kind", "delete"), FETCH_KINDS)
def test_fetch_survives_a_kill_at_every_crash_point(
    dovecot: Dovecot, tmp_path: Path, kind: str, delete: bool
) -> None:
    enumerate_fetch(dovecot, tmp_path, kind, delete, None)


class ReceivedCase(Case):
    """A case whose account has `received_header = true`, so that what fetch writes
    changes (the line, and the mbox From line waiting for the header): each message of
    ours is read back without the Received line fetch put on top and compared with the
    server's; one of ours without that line counts as a stray message."""

    def __post_init__(self) -> None:
        super().__post_init__()
        config = self.root / ".config" / "mailcli" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text('default_account = "cp"\n[accounts.cp.fetch]\nreceived_header = true\n')

    def delivered(self) -> list[bytes]:
        found = []
        for data in super().delivered():
            message, lines = RECEIVED.subn(b"", data, count=1)
            found.append(message if lines or data in self.foreign else b"<<no Received>>" + data)
        return found


RECEIVED = re.compile(rb"\AReceived: from [^\n]*\n\tby [^\n]*\(mailcli, account cp\)[^\n]*\n\t.*\n")


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_fetch_with_a_received_header_survives_a_kill_at_every_class_boundary(
    dovecot: Dovecot, tmp_path: Path, kind: str
) -> None:
    enumerate_fetch(dovecot, tmp_path, kind, True, cp.budget(), make=ReceivedCase)


# The random kill tests once drew instants from the clock, so they passed or
# failed by the machine's speed. This draws crash points, (syscall, N), from a counted
# run of a bigger mailbox with a seeded RNG: the same seed kills at the same point
# everywhere. MAILCLI_CRASH_SEED and MAILCLI_CRASH_SAMPLE choose the sample.
SAMPLE_MESSAGES = 300


def big_case(dovecot: Dovecot, root: Path, kind: str) -> Case:
    case = Case(dovecot, root, kind, delete=True)
    for number in range(MESSAGES, SAMPLE_MESSAGES):
        dovecot.drop_message(case.user, server_message(number))
    case.env.pop("MAILCLI_FETCH_BATCH")  # the default batch size: 256
    return case


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
@pytest.mark.parametrize("signal", ["SIGKILL", "SIGTERM"])
def test_sampled_crash_points_of_a_300_message_fetch_then_exactly_once(
    dovecot: Dovecot, tmp_path: Path, kind: str, signal: str
) -> None:
    require("strace")
    probe = big_case(dovecot, tmp_path / "count", kind)
    counted, points = cp.count(probe.args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    rng = random.Random(int(cp.SETTINGS.get("MAILCLI_CRASH_SEED", "27")))
    sample = rng.sample(points, int(cp.SETTINGS.get("MAILCLI_CRASH_SAMPLE", "3")))
    failures = []
    for index, point in enumerate(sample):
        case = big_case(dovecot, tmp_path / f"p{index}", kind)
        stopped = cp.run(case.args, case.env, point=point, signal=signal)
        # SIGTERM: stops like Ctrl-C (130) or dies of it when it lands before the handler.
        stop_exits = [130, -15, 143]
        failures += [f"{point}: {p}" for p in cp.exit_problem("stopped", stopped, stop_exits)]
        failures += [f"{point}: {p}" for p in lost_by_server(case)]
        final = cp.run([*case.args, "--json"], case.env)
        failures += [f"{point}: {p}" for p in cp.exit_problem("completion run", final)]
        got = Counter(case.delivered())
        counts = [got[server_message(n)] for n in range(SAMPLE_MESSAGES)]
        foreign_kept = all(got[data] == 1 for data in case.foreign)
        if counts != [1] * SAMPLE_MESSAGES or len(case.on_server()) != 0 or not foreign_kept:
            failures.append(f"{point} ({signal}): delivered {Counter(counts)} times")
    assert not failures, cp.fail_report(failures)


def test_a_first_fetch_killed_at_any_state_write_is_resumed_not_refused(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    """Found by the enumeration: a kill at the first write of a new state file left it
    empty, and every later run refused it as damaged (78). Kill a first fetch at every
    point that touches the state folder: the next run exits 0 and fetches exactly the
    messages not yet in the Maildir (those there but unrecorded are recorded instead)."""
    require("strace")
    probe = Case(dovecot, tmp_path / "count", "maildir", delete=False)
    counted, points = cp.count(probe.args, probe.env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    state_points = [p for p in points if "/mailcli/fetch" in p.label]
    assert len(state_points) >= 5, [str(p) for p in points]

    def one(numbered: tuple[int, cp.CrashPoint]) -> list[str]:
        index, point = numbered
        with adding_users:
            case = Case(dovecot, tmp_path / f"p{index}", "maildir", delete=False)
        if not cp.run(case.args, case.env, point=point).killed:
            return [f"{point}: not reached"]
        there = len(case.delivered()) - len(case.foreign)
        after = cp.run([*case.args, "--json"], case.env)
        if after.code != 0:
            return [f"{point}: {p}" for p in cp.exit_problem("next run", after)]
        if json.loads(after.stdout)["fetched"] != MESSAGES - there:
            return [f"{point}: fetched {after.stdout[:60]!r}, {there} were there"]
        return [f"{point}: {p}" for p in check(case, crashes=0)]

    failures = [f for found in cp.map_cases(one, enumerate(state_points)) for f in found]
    assert not failures, cp.fail_report(failures)
