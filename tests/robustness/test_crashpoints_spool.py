"""Crash-point enumeration of the sendmail spool (enqueue, `queue run`, the move to
`failed/`) and of `account add`/`remove`/`import` (see tests/crashpoints.py): after a kill at any
I/O system call, and a second kill in the run that follows, nothing is lost, each message
is sent once (plus at most one per crash, in the documented window between the server's
250 and the entry's removal), and the config file is the old one or the new one, whole."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.servers import require
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd
from tests.spoolcases import (
    ACCOUNT_OPERATIONS,
    QUEUE_RUN,
    QUEUED,
    SENDMAIL,
    account_args,
    account_home,
    config_problems,
    cron_home,
    outgoing,
    queue_template,
    spool_problems,
    subjects,
)

Factory = Callable[..., AioSmtpd]


SPOOL_INVARIANTS = [
    "each message sent once (plus at most one per crash, between 250 and removal)",
    "nothing lost: a message sendmail said it queued (exit 0) is sent; the queue ends empty",
    "no half entry (.eml without .json); failed/ holds whole entries (with a reason)",
    "documented exits only (never 70)",
    "the log holds whole lines only, each in its grammar",
]
CONFIG_INVARIANTS = [
    "the config is the old one or the new one, whole, and parses",
    "a rerun ends with the new one; documented exits only (never 70)",
]


def enumerate_points(
    name: str,
    count: Callable[[], list[cp.CrashPoint]],
    case: Callable[[int, cp.CrashPoint, list[bool]], list[str]],
    budget: int | None,
    invariants: list[str],
    report: Path,
) -> None:
    """Run `case` at the chosen points; it appends to its list whether its second run
    was killed too (a double crash)."""
    require("strace")
    points = count()
    chosen = cp.select(points, budget, seed=len(points))
    doubles: list[bool] = []
    failures = [f"{p}: {f}" for i, p in enumerate(chosen) for f in case(i, p, doubles)]
    row = {"crash_points": len(points), "boundaries": len(cp.boundaries(points))}
    row |= {"run": len(chosen), "double_crashes": sum(doubles), "every_point": budget is None}
    cp.record(name, {**row, "invariants": invariants}, report / "crashpoints.json")
    assert not failures, cp.fail_report(failures)


def enqueue_test(tmp_path: Path, factory: Factory, budget: int | None) -> None:
    closed = free_port()
    server = factory()

    def home(name: str) -> Path:
        path = tmp_path / name
        cron_home(path, closed)
        return path

    def count() -> list[cp.CrashPoint]:
        counted, points = cp.count(
            SENDMAIL, cp.base_env(home("count")), tmp_path / "c.log", input=outgoing("count")
        )
        assert counted.code == 0, counted.stderr  # the server is down: queued
        return points

    def case(index: int, point: cp.CrashPoint, doubles: list[bool]) -> list[str]:
        where = home(f"p{index}")
        env = cp.base_env(where)
        first = cp.run(SENDMAIL, env, point=point, input=outgoing(f"e{index}"))
        problems = cp.exit_problem("sendmail", first, [0])  # 0: durably queued
        cron_home(where, server.port)
        mark = len(server.received)
        # The run that sends what the crash left: killed after its first 250 (the window).
        second = cp.run(QUEUE_RUN, env, point=cp.CrashPoint("unlink", 1))
        doubles.append(second.killed)
        problems += cp.exit_problem("crashed queue run", second)
        final = cp.run(QUEUE_RUN, env)  # a half entry is quarantined and reported
        problems += cp.exit_problem("queue run", final, sorted(cp.DOCUMENTED_EXITS))
        sent = subjects(server, mark)[f"e{index}"]
        if first.code == 0 and sent == 0:
            problems.append("sendmail said queued (exit 0), the message was never sent")
        if sent > 1 + second.killed:
            problems.append(f"sent {sent} times")
        return problems + spool_problems(where, failed=None)

    enumerate_points("sendmail enqueue", count, case, budget, SPOOL_INVARIANTS, tmp_path)


def queue_run_test(tmp_path: Path, factory: Factory, budget: int | None, *, refuse: bool) -> None:
    server = factory()
    if refuse:
        server.data_reply = "554 5.7.1 refused for the crash test"
    template = queue_template(tmp_path)
    cron_home(template, server.port)
    # Refused entries: the second crash between the two renames into failed/.
    second_point = cp.CrashPoint("rename", 2) if refuse else cp.CrashPoint("unlink", 1)
    allowed = sorted(cp.DOCUMENTED_EXITS)

    def count() -> list[cp.CrashPoint]:
        where = tmp_path / "count"
        shutil.copytree(template, where)
        counted, points = cp.count(QUEUE_RUN, cp.base_env(where), tmp_path / "c.log")
        assert not cp.exit_problem("queue run", counted, allowed), counted.stderr
        return points

    def case(index: int, point: cp.CrashPoint, doubles: list[bool]) -> list[str]:
        where = tmp_path / f"p{index}"
        shutil.copytree(template, where)
        env = cp.base_env(where)
        mark = len(server.received)
        first = cp.run(QUEUE_RUN, env, point=point)
        second = cp.run(QUEUE_RUN, env, point=second_point)
        doubles.append(first.killed and second.killed)
        final = cp.run(QUEUE_RUN, env)
        problems = cp.exit_problem("crashed run", first, allowed)
        problems += cp.exit_problem("recovery run", second, allowed)
        problems += cp.exit_problem("final run", final, allowed)
        sent = subjects(server, mark)
        crashes = first.killed + second.killed
        if not refuse and set(sent) != {f"q{n}" for n in range(QUEUED)}:
            problems.append(f"lost: sent only {sorted(sent)}")
        if sum(sent.values()) > (0 if refuse else QUEUED) + crashes:
            problems.append(f"sent {sum(sent.values())} times for {QUEUED} ({crashes} crashes)")
        return problems + spool_problems(where, failed=QUEUED if refuse else 0)

    name = "queue run (to failed/)" if refuse else "queue run"
    enumerate_points(name, count, case, budget, SPOOL_INVARIANTS, tmp_path)


def account_test(tmp_path: Path, budget: int | None, operation: str) -> None:
    args = account_args(operation, tmp_path)

    def home(name: str) -> Path:
        return account_home(tmp_path / name, operation)

    before = home("before").read_bytes()
    after = tmp_path / "after"

    def count() -> list[cp.CrashPoint]:
        config = home("count")
        counted, points = cp.count(args, cp.base_env(config.parents[2]), tmp_path / "c.log")
        assert counted.code == 0, counted.stderr
        after.write_bytes(config.read_bytes())
        return points

    def case(index: int, point: cp.CrashPoint, doubles: list[bool]) -> list[str]:
        config = home(f"p{index}")
        env = cp.base_env(config.parents[2])
        problems = cp.exit_problem("crashed run", cp.run(args, env, point=point))
        return problems + config_problems(config, before, after.read_bytes(), args, env)

    enumerate_points(f"account {operation}", count, case, budget, CONFIG_INVARIANTS, tmp_path)


def test_sendmail_enqueue_survives_a_kill_at_every_crash_point(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_test(tmp_path, aiosmtpd_factory, None)  # ten points: all of them in CI


@pytest.mark.parametrize("refuse", [False, True], ids=["delivered", "refused"])
def test_queue_run_survives_a_kill_at_every_class_boundary(
    tmp_path: Path, aiosmtpd_factory: Factory, refuse: bool
) -> None:
    queue_run_test(tmp_path, aiosmtpd_factory, cp.budget(), refuse=refuse)


@pytest.mark.soak
@pytest.mark.parametrize("refuse", [False, True], ids=["delivered", "refused"])
def test_queue_run_survives_a_kill_at_every_crash_point(
    tmp_path: Path, aiosmtpd_factory: Factory, refuse: bool
) -> None:
    queue_run_test(tmp_path, aiosmtpd_factory, None, refuse=refuse)


@pytest.mark.parametrize("operation", ACCOUNT_OPERATIONS)
def test_account_config_is_old_or_new_at_every_crash_point(tmp_path: Path, operation: str) -> None:
    account_test(tmp_path, None, operation)  # a few points each: all of them in CI
