"""`queue run` when a message is accepted for some recipients and not for others.

* A recipient refused permanently (5xx) while another accepted is a diagnostic: one line
  on stderr even under -q, exit 67 (as `send` and `sendmail` use for a refused
  recipient), the refusal kept in failed/ (the message, and a JSON naming only the refused
  recipient, with the reason), the accepted recipient never sent it again.
* On a full disk (ENOSPC injected by strace at each write, fsync, ftruncate and rename the
  run makes in the queue, one at a time): exit 74 in one line, no hidden temporary left,
  and the recipient that accepted never gets the message twice, whatever the next run does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.helpers import MAILCLI, queue_dir, write_cron_config
from tests.servers import require
from tests.servers.ports import free_port
from tests.servers.scripted import Conn, ScriptedServer
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]
NOW, LATER, REFUSED = "now@example.test", "later@example.test", "refused@example.test"
DISK_SYSCALLS = ("write", "fsync", "ftruncate", "rename", "renameat", "renameat2", "link", "linkat")


def enqueue(home: Path, *recipients: str) -> None:
    """Queue one message for `recipients` (the server is down: queued, exit 0)."""
    env = cp.base_env(home, MAILCLI_SMTP_PORT=str(free_port()))
    done = cp.run(["sendmail", "-i", *recipients], env, input=b"Subject: partial\n\nbody\n")
    assert done.code == 0 and b"queued: " in done.stderr, done.stderr


def hidden_leftovers(home: Path) -> list[str]:
    return [p.name for p in queue_dir(home).rglob(".*") if p.name != ".lock"]


def test_a_recipient_refused_while_another_accepted_is_reported_and_kept(
    aiosmtpd_factory: Factory, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = aiosmtpd_factory()
    server.refuse_rcpt = {REFUSED}
    write_cron_config(home, server.port)
    enqueue(home, NOW, REFUSED)

    ran = cp.run(["queue", "run", "-q"], cp.base_env(home))
    assert ran.code == 67, ran.stderr
    lines = ran.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailcli: error: "), lines
    assert REFUSED in lines[0] and "550 5.1.1" in lines[0] and "refused" in lines[0]
    assert [r.rcpt_tos for r in server.received] == [(NOW,)]
    failed = queue_dir(home) / "failed"
    (kept,) = failed.glob("*.json")
    document = json.loads(kept.read_text())
    assert document["recipients"] == [REFUSED] and "550 5.1.1" in document["last_error"]
    assert b"Subject: partial" in kept.with_suffix(".eml").read_bytes()
    assert list(queue_dir(home).glob("*.json")) == []

    again = cp.run(["queue", "run"], cp.base_env(home))
    assert again.code == 0 and again.stderr == b"", again.stderr
    assert len(server.received) == 1  # the accepted recipient never gets it again


class PartialSink:
    """A scripted SMTP server: RCPT to LATER gets 451 while `later_refused` is set, every
    other recipient 250; each accepted DATA is counted per recipient."""

    def __init__(self) -> None:
        self.later_refused = True
        self.delivered: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.server = ScriptedServer(self._script)

    def _script(self, conn: Conn) -> None:
        conn.send("220 partial ESMTP")
        accepted: list[str] = []
        while line := conn.recv_line():
            verb = line.split()[0].upper()
            if verb == "RCPT" and LATER in line and self.later_refused:
                conn.send("451 4.2.0 mailbox busy")
            elif verb == "RCPT":
                accepted.append(line.split("<", 1)[1].split(">", 1)[0])
                conn.send("250 ok")
            elif verb == "DATA":
                conn.send("354 go on")
                while conn.file.readline(65536) not in (b".\r\n", b""):
                    pass
                with self._lock:
                    self.delivered.update(accepted)
                accepted = []
                conn.send("250 2.0.0 queued")
            elif verb in ("EHLO", "HELO", "MAIL", "RSET", "NOOP"):
                accepted = [] if verb in ("MAIL", "RSET") else accepted
                conn.send("250 ok")
            else:
                conn.send("221 bye")
                return


@pytest.fixture
def sink() -> Iterator[PartialSink]:
    served = PartialSink()
    with served.server:
        yield served


def disk_points(home: Path, log: Path) -> list[cp.CrashPoint]:
    """Every write, fsync, ftruncate, rename and link of a `queue run` into the queue."""
    assert cp.STRACE is not None
    argv = [cp.STRACE, "-qq", "-yy", "-s", "64", "-o", str(log)]
    argv += ["-e", "trace=" + ",".join(DISK_SYSCALLS)]
    done = subprocess.run(
        [*argv, *MAILCLI, "queue", "run"],
        capture_output=True,
        env=cp.base_env(home),
        timeout=120,
        check=False,
    )
    assert done.returncode == 75, done.stderr  # LATER deferred
    seen: Counter[str] = Counter()
    points = []
    for line in log.read_text(errors="replace").splitlines():
        syscall = line.split("(", 1)[0]
        if syscall not in DISK_SYSCALLS:
            continue
        seen[syscall] += 1
        if "/mailcli/queue" in line:
            points.append(cp.CrashPoint(syscall, seen[syscall], line))
    return points


def run_out_of_space(home: Path, point: cp.CrashPoint) -> subprocess.CompletedProcess[bytes]:
    assert cp.STRACE is not None
    inject = f"inject={point.syscall}:error=ENOSPC:when={point.n}"
    argv = [cp.STRACE, "-qq", "-o", "/dev/null", "-e", f"trace={point.syscall}", "-e", inject]
    return subprocess.run(
        [*argv, *MAILCLI, "queue", "run"],
        capture_output=True,
        env=cp.base_env(home),
        timeout=120,
        check=False,
    )


def test_queue_run_on_a_full_disk_is_74_and_never_sends_twice(
    sink: PartialSink, tmp_path: Path
) -> None:
    require("strace")
    template = tmp_path / "template"
    write_cron_config(template, sink.server.port)
    enqueue(template, NOW, LATER)
    counting = tmp_path / "count"
    shutil.copytree(template, counting)
    points = disk_points(counting, tmp_path / "count.log")
    assert len(points) >= 4, points  # the lock's PID, the JSON's write, fsync, rename
    failures = []
    for index, point in enumerate(points):
        home = tmp_path / f"p{index}"
        shutil.copytree(template, home)
        sink.later_refused, sink.delivered = True, Counter()
        full = run_out_of_space(home, point)
        problems = []
        err = full.stderr.decode(errors="replace")
        if full.returncode != 74 or err.count("\n") != 1 or "Traceback" in err:
            problems.append(f"exit {full.returncode}, stderr {err[-300:]!r}")
        if hidden_leftovers(home):
            problems.append(f"left behind: {hidden_leftovers(home)}")
        sink.later_refused = False
        after = cp.run(["queue", "run"], cp.base_env(home))
        if after.code not in (0, 69) or b"Traceback" in after.stderr:
            problems.append(f"next run exit {after.code}: {after.stderr[-300:]!r}")
        if sink.delivered[NOW] != 1:
            problems.append(f"{NOW} got it {sink.delivered[NOW]} times")
        kept = list((queue_dir(home) / "failed").glob("*.json"))
        if sink.delivered[LATER] != 1 and not kept:
            problems.append(f"{LATER} got it {sink.delivered[LATER]} times, nothing in failed/")
        failures += [f"{point.syscall}#{point.n} [{point.label[-90:]}]: {p}" for p in problems]
    assert not failures, "\n".join(failures)
