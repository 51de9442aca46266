"""Error-point enumeration of the sendmail spool (enqueue, `queue run`, the move to
`failed/`), see tests/errorpoints.py: every write, sync, rename, link, unlink, create,
mkdir and close on a file mailcli writes fails once with ENOSPC or EIO, or the disk
fills at each page while sendmail queues a large message (a real short write); the
run's status is documented, no temporary file is left, and with the disk back `queue
run` sends each message sendmail queued once (plus at most one if the failed call was
the removal of an entry the server had taken); failed/ holds whole entries."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import errorpoints as ep
from tests import spoolcases as crash
from tests.helpers import queue_dir
from tests.servers import require
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]
FILL_LEVELS = 4  # free-page counts a CI run tries (the first, the last, two between)


def queued_ids(home: Path) -> set[str]:
    """Entries whole in the queue (their JSON parses and their message is there)."""
    whole = set()
    for path in queue_dir(home).glob("*.json"):
        try:
            json.loads(path.read_text())
        except ValueError:
            continue
        if path.with_suffix(".eml").exists():
            whole.add(path.stem)
    return whole


SPOOL_INVARIANTS = [
    "the failed run exits 0, 73, 74 or 75 with an error line (never 70, no traceback)",
    "no temporary file left (.part in the queue, a lock's temporary)",
    "sendmail's exit 0 means an entry whole in the queue; a queued entry is sent once",
    "with the disk back, queue run sends each message once (plus one when the failed "
    "call was the removal of an entry the server had taken); the queue ends empty, "
    "failed/ holds whole entries",
    "the log holds whole lines only, each in its grammar (a failed append is dropped whole)",
]


def enqueue_test(tmp_path: Path, factory: Factory, budget: int | None) -> None:
    closed = free_port()
    server = factory()

    def home(name: str) -> Path:
        path = tmp_path / name
        crash.cron_home(path, closed)
        return path

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        where = home("count")
        counted, points = cp.count(
            crash.SENDMAIL,
            cp.base_env(where),
            tmp_path / "c.log",
            input=crash.outgoing("count"),
            syscalls=ep.ERROR_SYSCALLS,
        )
        assert counted.code in (0, 75), counted.stderr  # queued (75 before sendmail said 0)
        return where, points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        root = home(f"p{index}")
        env = cp.base_env(root)
        subject = f"e{index}"
        first, problems = ep.fail_at(
            where, crash.SENDMAIL, env, tmp_path / f"p{index}.log", input=crash.outgoing(subject)
        )
        left = ep.leftovers(root, where=where)
        problems += left
        entries = queued_ids(root)
        if first.code == 0 and not entries:
            problems.append("sendmail exited 0 and the message is not in the queue")
        crash.cron_home(root, server.port)
        mark = len(server.received)
        final = cp.run(crash.QUEUE_RUN, env)  # a half entry is quarantined and reported
        problems += cp.exit_problem("queue run", final, sorted(cp.DOCUMENTED_EXITS))
        sent = crash.subjects(server, mark)[subject]
        if sent != len(entries) or sent > 1:
            problems.append(f"{len(entries)} entries queued, sent {sent} times")
        problems += [] if left else ep.leftovers(root, where=where)
        return problems + crash.spool_problems(root, failed=None)

    ep.enumerate_errors("sendmail enqueue", count, case, budget, SPOOL_INVARIANTS, tmp_path)


def big_message(subject: str) -> bytes:
    """64 KiB: its write is cut short when the disk fills in the middle of it."""
    body = "".join(f"line {n} of a long message\n" for n in range(2500))[: 64 * 1024]
    return f"Subject: {subject}\n\n{body}".encode()


def enqueue_on_a_full_disk(tmp_path: Path, factory: Factory, budget: int | None) -> None:
    """The home (config, queue) on a tmpfs left with K free pages while sendmail queues
    a 64 KiB message (its server down); then the disk grows back and `queue run` sends
    what sendmail said it queued, once."""
    require("mount", need_root=True)
    closed, server = free_port(), factory()
    with ep.small_disk(tmp_path / "probe") as disk:
        crash.cron_home(disk / "home", closed)
        before = ep.used_pages(disk)
        done = cp.run(crash.SENDMAIL, cp.base_env(disk / "home"), input=big_message("probe"))
        assert done.code in (0, 75), done.stderr  # queued (75 before sendmail said 0)
        needed = ep.used_pages(disk) - before

    def one(level: int) -> tuple[int, list[str]]:
        subject = f"full {level}"
        with ep.small_disk(tmp_path / f"f{level}") as disk:
            root = disk / "home"
            crash.cron_home(root, closed)
            ep.leave_free(disk, level)
            env = cp.base_env(root)
            first = cp.run(crash.SENDMAIL, env, input=big_message(subject))
            problems = ep.exit_problems("sendmail on the full disk", first) + ep.leftovers(root)
            entries = queued_ids(root)
            if first.code == 0 and not entries:
                problems.append("sendmail exited 0 and the message is not in the queue")
            ep.leave_free(disk, None)
            crash.cron_home(root, server.port)
            final = cp.run(crash.QUEUE_RUN, env)
            problems += cp.exit_problem("queue run", final, sorted(cp.DOCUMENTED_EXITS))
            sent = crash.subjects(server, 0)[subject]
            if sent != len(entries) or sent > 1:
                problems.append(f"{len(entries)} entries queued, sent {sent} times")
            problems += crash.spool_problems(root, failed=None)
        return first.code, [f"{level} pages free: {p} (exit {first.code})" for p in problems]

    levels = ep.fill_levels(needed, budget)
    results = cp.map_cases(one, levels)
    assert results[0][0] not in (0, 75), "no free page and sendmail queued the message"
    row = {"pages_needed": needed, "levels_run": len(levels), "every_level": budget is None}
    ep.record("sendmail enqueue, full disk", row, tmp_path)
    failures = [f for _, found in results for f in found]
    assert not failures, ep.fail_report(failures)


def queue_run_test(tmp_path: Path, factory: Factory, budget: int | None, *, refuse: bool) -> None:
    """Each case has a server of its own: every case sends the same five messages."""
    starting = threading.Lock()

    def server_for(home: Path) -> AioSmtpd:
        with starting:
            server = factory()
        if refuse:
            server.data_reply = "554 5.7.1 refused for the error test"
        crash.cron_home(home, server.port)
        return server

    template = crash.queue_template(tmp_path)
    allowed = sorted(cp.DOCUMENTED_EXITS)
    usual = [0]  # the counted run's status: refused entries make it 69

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        where = tmp_path / "count"
        shutil.copytree(template, where)
        server_for(where)
        counted, points = cp.count(
            crash.QUEUE_RUN, cp.base_env(where), tmp_path / "c.log", syscalls=ep.ERROR_SYSCALLS
        )
        assert not cp.exit_problem("queue run", counted, allowed), counted.stderr
        usual[0] = counted.code
        return where, points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        root = tmp_path / f"p{index}"
        shutil.copytree(template, root)
        server = server_for(root)
        env = cp.base_env(root)
        log = tmp_path / f"p{index}.log"
        _, problems = ep.fail_at(where, crash.QUEUE_RUN, env, log, usual=usual[0])
        left = ep.leftovers(root, where=where)
        final = cp.run(crash.QUEUE_RUN, env)
        problems += left + cp.exit_problem("rerun", final, allowed)
        sent = crash.subjects(server, 0)
        if not refuse and set(sent) != {f"q{n}" for n in range(crash.QUEUED)}:
            problems.append(f"lost: sent only {sorted(sent)}")
        # The one unavoidable resend: the server took it, its removal is what failed.
        most = 0 if refuse else crash.QUEUED + 1
        if sum(sent.values()) > most or max(sent.values(), default=0) > 2:
            problems.append(f"sent {dict(sent)} for {crash.QUEUED} entries")
        problems += [] if left else ep.leftovers(root, where=where)
        return problems + crash.spool_problems(root, failed=crash.QUEUED if refuse else 0)

    name = "queue run (to failed/)" if refuse else "queue run"
    ep.enumerate_errors(name, count, case, budget, SPOOL_INVARIANTS, tmp_path)


def test_sendmail_enqueue_survives_an_error_at_every_class_boundary(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_test(tmp_path, aiosmtpd_factory, cp.budget())


def test_sendmail_enqueue_on_a_disk_that_fills_up_at_sampled_pages(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_on_a_full_disk(tmp_path, aiosmtpd_factory, FILL_LEVELS)


@pytest.mark.soak
def test_sendmail_enqueue_on_a_disk_that_fills_up_at_every_page(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_on_a_full_disk(tmp_path, aiosmtpd_factory, None)


@pytest.mark.parametrize("refuse", [False, True], ids=["delivered", "refused"])
def test_queue_run_survives_an_error_at_every_class_boundary(
    tmp_path: Path, aiosmtpd_factory: Factory, refuse: bool
) -> None:
    queue_run_test(tmp_path, aiosmtpd_factory, cp.budget(), refuse=refuse)


@pytest.mark.soak
def test_sendmail_enqueue_survives_every_error_at_every_point(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_test(tmp_path, aiosmtpd_factory, None)


@pytest.mark.soak
@pytest.mark.parametrize("refuse", [False, True], ids=["delivered", "refused"])
def test_queue_run_survives_every_error_at_every_point(
    tmp_path: Path, aiosmtpd_factory: Factory, refuse: bool
) -> None:
    queue_run_test(tmp_path, aiosmtpd_factory, None, refuse=refuse)
