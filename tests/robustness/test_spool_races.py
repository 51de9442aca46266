"""Processes racing on one spool: `queue run` against a `sendmail` enqueue, two `queue
run`s, a `queue remove` against a run. One process is stopped after each of its queue
steps in turn (tests/interleave.py: SIGSTOP injected by strace, no timing), the other
runs whole meanwhile, then the first goes on. Afterwards a last `queue run` empties the
queue, and the sink (aiosmtpd) must have received each queued message exactly once
(a removed one: once or never, as the removal's answer says); nothing sendmail reported
queued is quarantined in failed/; no exit is 70 or a traceback.

The default run stops at a spread of each scenario's steps; `-m soak` at every step.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import interleave
from tests.helpers import queue_dir, write_cron_config
from tests.interleave import Paused, Step
from tests.servers import require
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd
from tests.spoolcases import QUEUE_RUN, SENDMAIL, outgoing

Factory = Callable[..., AioSmtpd]
QUEUED = 2
BUDGET = 5  # steps per scenario in the default run; soak: every step


@dataclass
class Spool:
    """A home whose config points at the sink; `down` is the environment in which
    sendmail finds its server closed and queues."""

    home: Path
    server: AioSmtpd
    mark: int = 0

    @property
    def env(self) -> dict[str, str]:
        return cp.base_env(self.home)

    @property
    def down(self) -> dict[str, str]:
        return cp.base_env(self.home, MAILCLI_SMTP_PORT=str(free_port()))

    def enqueue(self, subject: str) -> str:
        done = cp.run(SENDMAIL, self.down, input=outgoing(subject))
        assert done.code == 0 and b"queued: " in done.stderr, done.stderr
        return _newest(queue_dir(self.home))

    def ids(self) -> list[str]:
        return sorted(path.stem for path in queue_dir(self.home).glob("*.json"))

    def sent(self) -> Counter[str]:
        return Counter(
            r.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode()
            for r in self.server.received[self.mark :]
        )

    def failed(self) -> list[str]:
        failed = queue_dir(self.home) / "failed"
        return sorted(p.name for p in failed.iterdir()) if failed.is_dir() else []


def _newest(queue: Path) -> str:
    return max(queue.glob("*.json"), key=lambda path: path.stat().st_mtime_ns).stem


def problems_of(what: str, run: cp.Run, allowed: tuple[int, ...]) -> list[str]:
    if run.code in allowed and b"Traceback" not in run.stderr:
        return []
    return [f"{what} exit {run.code}: {run.stderr.decode(errors='replace')[-300:]!r}"]


@pytest.fixture(autouse=True)
def no_process_left_stopped() -> Iterator[None]:
    yield
    interleave.abandon_all()


@pytest.fixture
def spool(tmp_path: Path, aiosmtpd_factory: Factory) -> Iterator[Spool]:
    require("strace")
    home = tmp_path / "home"
    server = aiosmtpd_factory()
    write_cron_config(home, server.port)
    yield Spool(home, server)


def test_an_enqueue_finishing_while_the_run_checks_it_is_sent_not_quarantined(
    spool: Spool, tmp_path: Path
) -> None:
    """sendmail stopped between its message and its JSON; `queue run` sees the message
    without JSON, and is stopped right after opening it to probe its lock; sendmail
    then finishes (JSON written, lock released) and says queued; the run goes on."""
    _, enqueue_steps = interleave.steps(
        SENDMAIL, spool.down, tmp_path / "count.log", input=outgoing("count")
    )
    shutil.rmtree(queue_dir(spool.home))
    (message_in,) = [
        s for s in enqueue_steps if s.syscall.startswith("rename") and ".eml" in s.label
    ]
    sendmail = Paused(SENDMAIL, spool.down, message_in, tmp_path / "s.log", input=outgoing("race"))
    assert sendmail.reached
    (message,) = queue_dir(spool.home).glob("*.eml")
    assert not message.with_suffix(".json").exists()

    probe = Step("openat", 1, path=str(message))
    run = Paused(QUEUE_RUN, spool.env, probe, tmp_path / "r.log")
    assert run.reached  # it saw the message alone and opened it to test the lock
    queued = sendmail.resume()
    assert queued.code == 0 and b"queued: " in queued.stderr, queued.stderr
    ran = run.resume()

    assert ran.code == 0, ran.stderr
    assert spool.sent() == {"race": 1}
    assert spool.failed() == []
    assert spool.ids() == []


# -- the interleavings family ----------------------------------------------------------


@dataclass
class Case:
    """One home copied from the template, checked against the sink after the race."""

    spool: Spool
    problems: list[str]

    def check(self, what: str, run: cp.Run, allowed: tuple[int, ...]) -> None:
        self.problems += problems_of(what, run, allowed)

    def finish(self, expected: Mapping[str, int | tuple[int, ...]]) -> list[str]:
        """A last run empties the queue; each subject sent as often as `expected` says."""
        final = cp.run(QUEUE_RUN, self.spool.env)
        self.check("final queue run", final, (0,))
        sent = self.spool.sent()
        for subject, times in expected.items():
            allowed = times if isinstance(times, tuple) else (times,)
            if sent[subject] not in allowed:
                self.problems.append(f"{subject} sent {sent[subject]} times, not {allowed}")
        if unexpected := set(sent) - set(expected):
            self.problems.append(f"sent what was never queued: {sorted(unexpected)}")
        if self.spool.failed():
            self.problems.append(f"quarantined or failed: {self.spool.failed()}")
        if self.spool.ids():
            self.problems.append(f"left in the queue: {self.spool.ids()}")
        return self.problems


class Races:
    """The template spool (QUEUED messages q0, q1...) and a fresh copy per case."""

    def __init__(self, tmp_path: Path, server: AioSmtpd) -> None:
        self.tmp_path = tmp_path
        self.server = server
        self.template = Spool(tmp_path / "template", server)
        write_cron_config(self.template.home, server.port)
        self.ids = [self.template.enqueue(f"q{n}") for n in range(QUEUED)]
        self.cases = 0

    def case(self) -> Case:
        self.cases += 1
        home = self.tmp_path / f"case{self.cases}"
        shutil.copytree(self.template.home, home)
        return Case(Spool(home, self.server, mark=len(self.server.received)), [])

    def steps_of(self, args: list[str], *, down: bool = False, input: bytes = b"") -> list[Step]:
        spool = self.case().spool
        env = spool.down if down else spool.env
        log = self.tmp_path / f"steps{self.cases}.log"
        done, found = interleave.steps(args, env, log, input=input)
        assert done.code == 0, done.stderr
        return found

    def log(self, name: str) -> Path:
        return self.tmp_path / f"{name}{self.cases}.log"


QUEUED_SUBJECTS = {f"q{n}": 1 for n in range(QUEUED)}


def run_stopped_while_sendmail_enqueues(races: Races, step: Step) -> list[str]:
    case = races.case()
    run = Paused(QUEUE_RUN, case.spool.env, step, races.log("run"))
    queued = cp.run(SENDMAIL, case.spool.down, input=outgoing("new"))
    case.check("sendmail", queued, (0,))
    case.check("stopped queue run", run.resume(), (0,))
    return case.finish({**QUEUED_SUBJECTS, "new": 1})


def sendmail_stopped_while_the_queue_runs(races: Races, step: Step) -> list[str]:
    case = races.case()
    log = races.log("sendmail")
    sendmail = Paused(SENDMAIL, case.spool.down, step, log, input=outgoing("new"))
    case.check("queue run", cp.run(QUEUE_RUN, case.spool.env), (0,))
    case.check("stopped sendmail", sendmail.resume(), (0,))
    return case.finish({**QUEUED_SUBJECTS, "new": 1})


def two_queue_runs(races: Races, step: Step) -> list[str]:
    case = races.case()
    first = Paused(QUEUE_RUN, case.spool.env, step, races.log("run"))
    case.check("second queue run", cp.run(QUEUE_RUN, case.spool.env), (0, 75))
    case.check("stopped queue run", first.resume(), (0,))
    return case.finish(QUEUED_SUBJECTS)


def remove_while_the_queue_runs(races: Races, step: Step) -> list[str]:
    case = races.case()
    run = Paused(QUEUE_RUN, case.spool.env, step, races.log("run"))
    removed = cp.run(["queue", "remove", races.ids[0]], case.spool.env)
    # 0 removed, 75 the run holds it, 66 the run stopped after delivering it (the entry
    # is gone): finish() then counts it delivered once.
    case.check("queue remove", removed, (0, 66, 75))
    case.check("stopped queue run", run.resume(), (0,))
    return case.finish({"q0": 0 if removed.code == 0 else 1, "q1": 1})


def run_while_a_remove_is_stopped(races: Races, step: Step) -> list[str]:
    case = races.case()
    remove = ["queue", "remove", races.ids[0]]
    stopped = Paused(remove, case.spool.env, step, races.log("remove"))
    case.check("queue run", cp.run(QUEUE_RUN, case.spool.env), (0, 75))
    removed = stopped.resume()
    case.check("stopped queue remove", removed, (0, 66))
    return case.finish({"q0": 0 if removed.code == 0 else 1, "q1": 1})


SCENARIOS = {
    "queue run stopped, sendmail enqueues": (run_stopped_while_sendmail_enqueues, "run"),
    "sendmail stopped, queue run": (sendmail_stopped_while_the_queue_runs, "sendmail"),
    "queue run stopped, another queue run": (two_queue_runs, "run"),
    "queue run stopped, queue remove": (remove_while_the_queue_runs, "run"),
    "queue remove stopped, queue run": (run_while_a_remove_is_stopped, "remove"),
}


def interleavings(tmp_path: Path, server: AioSmtpd, name: str, budget: int | None) -> None:
    require("strace")
    races = Races(tmp_path, server)
    scenario, stopped = SCENARIOS[name]
    if stopped == "run":
        found = races.steps_of(QUEUE_RUN)
    elif stopped == "sendmail":
        found = races.steps_of(SENDMAIL, down=True, input=outgoing("count"))
    else:
        found = races.steps_of(["queue", "remove", races.ids[0]])
    chosen = interleave.spread(found, budget)
    failures = [f"{step}: {problem}" for step in chosen for problem in scenario(races, step)]
    print(f"{name}: {len(found)} steps, {len(chosen)} interleavings run")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_interleavings(tmp_path: Path, aiosmtpd_factory: Factory, name: str) -> None:
    interleavings(tmp_path, aiosmtpd_factory(), name, BUDGET)


@pytest.mark.soak
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_interleaving(tmp_path: Path, aiosmtpd_factory: Factory, name: str) -> None:
    interleavings(tmp_path, aiosmtpd_factory(), name, None)
