"""Error-point enumeration of `fetch` (Maildir, mbox, MDA; keep and --delete) and of
`retr -o`: every write, sync, rename, link, unlink, create, mkdir and close on a file
mailcli writes fails once with ENOSPC or EIO (see tests/errorpoints.py), or the disk
runs out at each page (short writes); then the run's status is documented, no temporary
file is left, the server deleted only what was delivered, and with the disk back a rerun
fetches every message exactly once (the fetch crash points' Case and checks)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import errorpoints as ep
from tests import fetchcases as crash
from tests.servers import require
from tests.servers.dovecot import Dovecot

# A Dovecot user per case; adding one is not safe twice at once (see test_crashpoints).
_adding_users = threading.Lock()


def new_case(dovecot: Dovecot, root: Path, kind: str, delete: bool) -> crash.Case:
    with _adding_users:
        return crash.Case(dovecot, root, kind, delete)


def not_ours(case: crash.Case) -> Callable[[Path], bool]:
    """Another program's files: the one in tmp/ the case planted, and what the test's MDA
    (a shell line, no cleanup) leaves in tmp/ when the disk is full."""
    return lambda path: path in case.busy or (case.kind == "mda" and path.name.startswith("m."))


def after_error(case: crash.Case, failed: cp.Run, where: ep.ErrorPoint | None) -> list[str]:
    """What must hold once the failed run is over, then after a rerun with the disk back."""
    problems = ep.leftovers(case.root, keep=not_ours(case), where=where)
    problems += crash.lost_by_server(case)
    rerun = cp.run([*case.args, "--json"], case.env)
    if rerun.code != 0:
        return problems + cp.exit_problem("rerun", rerun)
    again = cp.run([*case.args, "--json"], case.env) if not case.delete else None
    if again and (again.code != 0 or json.loads(again.stdout)["fetched"] != 0):
        problems.append(f"the next run: exit {again.code}, {again.stdout[:80]!r}")
    if not problems:  # a file left by the failed run is reported once
        problems += ep.leftovers(case.root, keep=not_ours(case), where=where)
    # An MDA cannot tell what it already has: a failure after it took a message and
    # before its exit was recorded delivers that one again (as after a crash).
    return problems + crash.check(case, crashes=int(failed.code != 0))


FETCH_INVARIANTS = [
    "the failed run exits 0, 73, 74 or 75 with an error line (never 70, no traceback)",
    "no temporary file left (.part, Maildir tmp/, lock temporaries)",
    "the server deleted only what was delivered and recorded",
    "with the disk back, a rerun completes; every server message in the destination once "
    "(MDA: at most once more), byte-identical; foreign mail kept; the server is empty "
    "(--delete), or the next run fetches nothing (keep)",
]


def enumerate_fetch(
    dovecot: Dovecot, tmp_path: Path, kind: str, delete: bool, budget: int | None
) -> None:
    require("strace")
    probe = new_case(dovecot, tmp_path / "count", kind, delete)
    counted, points = cp.count(
        probe.args, probe.env, tmp_path / "count.log", syscalls=ep.ERROR_SYSCALLS
    )
    assert counted.code == 0, counted.stderr
    chosen = ep.select(points, probe.root, budget, seed=len(points))

    def one(numbered: tuple[int, ep.ErrorPoint]) -> list[str]:
        index, where = numbered
        case = new_case(dovecot, tmp_path / f"p{index}", kind, delete)
        failed, problems = ep.fail_at(where, case.args, case.env, tmp_path / f"p{index}.log")
        problems += after_error(case, failed, where)
        return [f"{where}: {p} (failed run exit {failed.code})" for p in problems]

    failures = [f for found in cp.map_cases(one, enumerate(chosen)) for f in found]
    name = f"fetch {kind}{' --delete' if delete else ''}"
    row = {"error_points": len(ep.select(points, probe.root, None, 0))}
    row |= {"boundaries": ep.boundary_count(points, probe.root), "run": len(chosen)}
    ep.record(name, {**row, "invariants": FETCH_INVARIANTS}, tmp_path)
    assert not failures, ep.fail_report(failures)


# What the enumeration still finds, by destination (a strict xfail: it must fail).
FETCH_DEFECTS: dict[str, str] = {}


def fetch_kinds(*modes: bool) -> list[object]:
    def marks(kind: str) -> list[pytest.MarkDecorator]:
        return [ep.defect(FETCH_DEFECTS[kind])] if kind in FETCH_DEFECTS else []

    return [
        pytest.param(kind, delete, marks=marks(kind))
        for kind in ("maildir", "mbox", "mda")
        for delete in modes
    ]


# Keep mode makes the same file calls as --delete (the DELEs are socket writes): CI runs
# --delete, where a wrong answer would also delete mail on the server; soak runs both.
CI_KINDS = fetch_kinds(True)
FETCH_KINDS = fetch_kinds(False, True)
# Free-page counts a CI run tries: the first, the last and evenly spread ones between.
FILL_LEVELS = 4


@pytest.mark.parametrize(("kind", "delete"), CI_KINDS)
def test_fetch_survives_an_error_at_every_class_boundary(
    dovecot: Dovecot, tmp_path: Path, kind: str, delete: bool
) -> None:
    enumerate_fetch(dovecot, tmp_path, kind, delete, cp.budget())


@pytest.mark.soak
@pytest.mark.parametrize(("kind", "delete"), FETCH_KINDS)
def test_fetch_survives_every_error_at_every_point(
    dovecot: Dovecot, tmp_path: Path, kind: str, delete: bool
) -> None:
    enumerate_fetch(dovecot, tmp_path, kind, delete, None)


def short_writes(dovecot: Dovecot, tmp_path: Path, kind: str, budget: int | None) -> None:
    """The destination and the home on a tmpfs left with K free pages, for each K below
    what a whole `fetch --delete` takes (the write that runs out is cut short where the
    kernel cuts it); then the tmpfs grows back and a rerun completes exactly once."""
    require("mount", need_root=True)
    with ep.small_disk(tmp_path / "probe") as disk:
        probe = new_case(dovecot, disk / "case", kind, delete=True)
        before = ep.used_pages(disk)
        done = cp.run(probe.args, probe.env)
        assert done.code == 0, done.stderr
        needed = ep.used_pages(disk) - before
    # The run's peak is above what stays (an mbox batch file, its journal): the soak
    # run goes on past it, where the run succeeds.
    levels = ep.fill_levels(needed, budget) if budget is not None else list(range(2 * needed + 4))

    def one(level: int) -> tuple[int, list[str]]:
        with ep.small_disk(tmp_path / f"f{level}") as disk:
            case = new_case(dovecot, disk / "case", kind, delete=True)
            ep.leave_free(disk, level)
            failed = cp.run(case.args, case.env)
            problems = ep.exit_problems("run on the full disk", failed)
            ep.leave_free(disk, None)
            problems += after_error(case, failed, None)
        return failed.code, [f"{level} pages free: {p} (exit {failed.code})" for p in problems]

    results = cp.map_cases(one, levels)
    failures = [f for _, found in results for f in found]
    exits = Counter(code for code, _ in results)
    assert results[0][0] != 0, f"no free page and the run succeeded: {exits}"
    row: dict[str, object] = {"pages_needed": needed, "levels_run": len(levels)}
    row |= {"every_level": budget is None, "exits": dict(sorted(exits.items()))}
    ep.record(f"fetch {kind} --delete, full disk", row, tmp_path)
    assert not failures, ep.fail_report(failures)


@pytest.mark.parametrize("kind", ["maildir", "mbox", "mda"])
def test_fetch_on_a_disk_that_fills_up_at_sampled_pages(
    dovecot: Dovecot, tmp_path: Path, kind: str
) -> None:
    short_writes(dovecot, tmp_path, kind, FILL_LEVELS)


@pytest.mark.soak
@pytest.mark.parametrize("kind", ["maildir", "mbox", "mda"])
def test_fetch_on_a_disk_that_fills_up_at_every_page(
    dovecot: Dovecot, tmp_path: Path, kind: str
) -> None:
    short_writes(dovecot, tmp_path, kind, None)


# The fetch state alone on the full disk: enough tiny messages that its appends cross a
# page, so that one of them is cut short by the kernel (a real short write).
TINY = 240


def tiny_message(number: int) -> bytes:
    return f"Subject: tiny {number}\n\ntiny body {number}\n".encode()


def state_case(dovecot: Dovecot, root: Path, kind: str) -> crash.Case:
    """A case whose mailbox holds only tiny messages: a batch file of large ones would
    fill the disk before the state crosses a page."""
    case = new_case(dovecot, root, kind, delete=True)
    for path in dovecot.maildir(case.user).glob("*/*"):
        path.unlink()
    for number in range(TINY):
        dovecot.drop_message(case.user, tiny_message(number))
    case.env["MAILCLI_FETCH_BATCH"] = "64"
    return case


def exactly_once(case: crash.Case) -> list[str]:
    got = Counter(case.delivered())
    expected = [tiny_message(n) for n in range(TINY)]
    problems = [f"foreign message seen {got[m]} times" for m in case.foreign if got[m] != 1]
    counts = Counter(got[m] for m in expected)
    if set(counts) != {1}:
        problems.append(f"server messages delivered {dict(counts)} (times: messages)")
    stray = set(got) - set(expected) - set(case.foreign)
    problems += [f"{len(stray)} truncated or foreign-bytes message(s)"] if stray else []
    left = len(case.on_server())
    return problems + ([f"{left} message(s) left on the server"] if left else [])


def state_on_a_full_disk(dovecot: Dovecot, tmp_path: Path, kind: str) -> None:
    """HOME (state, lock, mbox journal and batch file) on a tmpfs left with K free pages,
    the destination elsewhere, for every K below what the run takes there."""
    require("mount", need_root=True)
    probe = state_case(dovecot, tmp_path / "probe", kind)
    with ep.small_disk(probe.root / ".local") as disk:
        assert cp.run(probe.args, probe.env).code == 0
        needed = ep.used_pages(disk) + 4  # the lock, the state, and what the run frees

    def one(level: int) -> list[str]:
        case = state_case(dovecot, tmp_path / f"s{level}", kind)
        with ep.small_disk(case.root / ".local") as disk:
            ep.leave_free(disk, level)
            failed = cp.run(case.args, case.env)
            problems = ep.exit_problems("run on the full disk", failed)
            problems += ep.leftovers(case.root, keep=lambda path: path in case.busy)
            ep.leave_free(disk, None)
            rerun = cp.run(case.args, case.env)
            problems += cp.exit_problem("rerun", rerun)
            problems += exactly_once(case)
        return [f"{level} pages free: {p} (exit {failed.code})" for p in problems]

    failures = [f for found in cp.map_cases(one, range(needed)) for f in found]
    row = {"levels_run": needed, "every_level": True}
    ep.record(f"fetch {kind} --delete, the state on a full disk", row, tmp_path)
    assert not failures, ep.fail_report(failures)


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_fetch_with_its_state_on_a_disk_that_fills_up_at_every_page(
    dovecot: Dovecot, tmp_path: Path, kind: str
) -> None:
    state_on_a_full_disk(dovecot, tmp_path, kind)


RETR_INVARIANTS = [
    "the failed run exits 0, 73 or 74 with an error line (never 70, no traceback)",
    "no temporary file left; the output file is the old one or the whole message",
    "with the disk back, a rerun writes the whole message",
]


def retr_test(dovecot: Dovecot, tmp_path: Path, budget: int | None) -> None:
    """`retr 1 -o FILE` over a FILE that holds something else: every error point of it."""
    with _adding_users:
        dovecot.add_user(user := f"retr{id(tmp_path) % 100000}", "pw")
    dovecot.drop_message(user, crash.server_message(8))  # 1,096 lines, about 20 KiB
    old = b"what was there before\n"

    def home(name: str) -> tuple[Path, list[str], dict[str, str]]:
        root = tmp_path / name
        output = root / "retr-out" / "message"
        output.parent.mkdir(parents=True)
        output.write_bytes(old)
        where = ["--host", "127.0.0.1", "--port", str(dovecot.pop3_port), "--security", "none"]
        args = ["retr", "1", "-o", str(output), *where, "--user", user]
        return output, args, cp.base_env(root, MAILCLI_PASSWORD="pw")

    whole = tmp_path / "whole"

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        output, args, env = home("count")
        counted, points = cp.count(args, env, tmp_path / "c.log", syscalls=ep.ERROR_SYSCALLS)
        assert counted.code == 0, counted.stderr
        whole.write_bytes(output.read_bytes())
        return output.parents[1], points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        output, args, env = home(f"p{index}")
        _, problems = ep.fail_at(where, args, env, tmp_path / f"p{index}.log")
        problems += ep.leftovers(output.parents[1], where=where)
        if output.read_bytes() not in (old, whole.read_bytes()):
            problems.append(f"the output is neither the old file nor the message: {len(old)}")
        rerun = cp.run(args, env)
        problems += cp.exit_problem("rerun", rerun)
        if output.read_bytes() != whole.read_bytes():
            problems.append("after a rerun the output is not the whole message")
        return problems

    ep.enumerate_errors("retr -o", count, case, budget, RETR_INVARIANTS, tmp_path)


def test_retr_output_survives_an_error_at_every_class_boundary(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    retr_test(dovecot, tmp_path, cp.budget())


@pytest.mark.soak
def test_retr_output_survives_every_error_at_every_point(dovecot: Dovecot, tmp_path: Path) -> None:
    retr_test(dovecot, tmp_path, None)
