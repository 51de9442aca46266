"""The fault matrix: full disks, read-only destinations, damaged state, kills and signals
(at every crash point: test_crashpoints*.py), for fetch and for the sendmail spool.
Nothing is lost, nothing partial is delivered, and every failure has its documented
exit status."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.helpers import MAILCLI, Mailcli, write_cron_config
from tests.servers import require
from tests.servers.accounts import numbered_message as message
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd


@contextmanager
def tmpfs(path: Path, size: str, *options: str) -> Iterator[Path]:
    """A small file system of its own (as root): the way to fill a disk in a test."""
    require("mount", need_root=True)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fetch(mailcli: Mailcli, *extra: str) -> tuple[int, str]:
    result = mailcli("fetch", *extra)
    return result.code, result.stderr


def files(maildir: Path) -> list[bytes]:
    return [
        p.read_bytes()
        for sub in ("new", "cur")
        if (maildir / sub).is_dir()
        for p in (maildir / sub).iterdir()
    ]


def test_disk_full_during_fetch_is_74_and_nothing_is_lost(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    originals = [message(n, size=30_000) for n in range(20)]
    for data in originals:
        mailbox.drop(data)
    with tmpfs(tmp_path / "small", "200k") as small:
        code, err = fetch(mailcli, "--delete", "--to", f"maildir:{small}/Maildir")
        assert code == 74, err
        assert "No space left on device" in err
        first = files(small / "Maildir")
        assert os.listdir(small / "Maildir" / "tmp") == []  # no partial message anywhere
    assert 0 < len(first) < 20 and all(data in originals for data in first)
    assert mailcli.server_count() == 20  # no QUIT after the failure: nothing deleted yet
    code, err = fetch(mailcli, "--delete", "--to", f"maildir:{tmp_path}/big")
    assert code == 0, err
    assert sorted(first + files(tmp_path / "big")) == sorted(originals)  # exactly once
    assert mailcli.server_count() == 0


def test_read_only_destination_is_73_and_the_server_is_untouched(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    mailbox.drop(message(1, size=100))
    with tmpfs(tmp_path / "ro", "1m", "ro") as read_only:
        code, err = fetch(mailcli, "--delete", "--to", f"maildir:{read_only}/Maildir")
    assert code == 73, err
    assert "Read-only file system" in err
    assert mailcli.server_count() == 1


@pytest.mark.parametrize("damage", ["truncated-header", "garbage", "empty"])
def test_damaged_state_is_78_never_a_silent_refetch(
    mailcli: Mailcli, mailbox: Mailbox, damage: str, isolated_environment: Path
) -> None:
    mailbox.drop(message(1, size=100))
    assert fetch(mailcli)[0] == 0
    (state,) = (isolated_environment / ".local/state/mailcli/fetch").glob("*.uids")
    text = state.read_bytes()
    state.write_bytes(
        {"truncated-header": text[:10], "garbage": b"\x00\xff" + text, "empty": b""}[damage]
    )
    code, err = fetch(mailcli)
    assert code == 78
    assert str(state) in err and "damaged" in err
    assert len(files(isolated_environment / "Maildir")) == 1


def test_state_losing_its_last_lines_causes_no_duplicate(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    for number in range(5):
        mailbox.drop(message(number, size=100))
    assert fetch(mailcli)[0] == 0
    (state,) = (isolated_environment / ".local/state/mailcli/fetch").glob("*.uids")
    state.write_text(state.read_text().splitlines()[0] + "\n")  # header only: UIDs forgotten
    code, err = fetch(mailcli)
    assert code == 0, err
    assert len(files(isolated_environment / "Maildir")) == 5  # recognised by file name


Factory = Callable[..., AioSmtpd]


def sendmail(home: Path, subject: str) -> int:
    raw = f"Subject: {subject}\n\nbody\n".encode()
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [*MAILCLI, "sendmail", "-i", "root@example.test"],
        input=raw,
        env=env,
        capture_output=True,
        check=False,
    ).returncode


def test_kill_9_during_queue_run_loses_nothing(
    aiosmtpd_factory: Factory, isolated_environment: Path
) -> None:
    home = isolated_environment
    write_cron_config(home, free_port())
    subjects = [f"queued {n}" for n in range(30)]
    assert {sendmail(home, subject) for subject in subjects} == {0}  # queued
    server = aiosmtpd_factory()
    write_cron_config(home, server.port)
    env = {**os.environ, "HOME": str(home)}
    rng = random.Random(5)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            [*MAILCLI, "queue", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.1, 0.4))
        if process.poll() is None:
            process.kill()
            kills += 1
        process.wait()
    final = subprocess.run([*MAILCLI, "queue", "run"], env=env, capture_output=True, check=False)
    assert final.returncode == 0, final.stderr
    received = [r.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for r in server.received]
    assert set(received) == set(subjects)  # nothing lost
    # A kill between the server's 250 and the queue's removal resends that one message.
    assert len(received) - len(subjects) <= kills
    listed = subprocess.run(
        [*MAILCLI, "queue", "list", "--json"], env=env, capture_output=True, check=True
    ).stdout
    assert json.loads(listed)["queue"] == []


def test_spool_on_a_full_disk_is_74_with_no_half_entry(
    isolated_environment: Path, tmp_path: Path
) -> None:
    home = isolated_environment
    write_cron_config(home, free_port())
    with tmpfs(tmp_path / "state", "64k") as state:
        env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(state)}
        raw = b"Subject: big\n\n" + b"x" * 200_000 + b"\n"
        done = subprocess.run(
            [sys.executable, "-m", "mailcli", "sendmail", "-i", "root@example.test"],
            input=raw,
            env=env,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 74, done.stderr
        queue = state / "mailcli" / "queue"
        names = os.listdir(queue) if queue.exists() else []
        assert [n for n in names if n.endswith(".json")] == []
        assert [n for n in names if not n.startswith(".")] == []


def test_spool_on_a_read_only_disk_is_73(isolated_environment: Path, tmp_path: Path) -> None:
    home = isolated_environment
    write_cron_config(home, free_port())
    with tmpfs(tmp_path / "state", "64k", "ro") as state:
        env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(state)}
        done = subprocess.run(
            [*MAILCLI, "sendmail", "-i", "root@example.test"],
            input=b"Subject: s\n\nx\n",
            env=env,
            capture_output=True,
            check=False,
        )
    assert done.returncode == 73, done.stderr
    assert b"Read-only file system" in done.stderr and b"Traceback" not in done.stderr


# The signal arrives on entry to the N-th socket write of `queue run` (strace inject), so
# it always lands inside the SMTP conversation, never at a moment chosen by the clock
# (a signal during Python's own start-up is not mailcli's to handle).
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("write", [1, 4, 9, 20])
def test_queue_run_stopped_by_a_signal_loses_nothing(
    aiosmtpd_factory: Factory, isolated_environment: Path, stop: str, write: int
) -> None:
    require("strace")
    home = isolated_environment
    write_cron_config(home, free_port())
    subjects = [f"signal {n}" for n in range(15)]
    assert {sendmail(home, subject) for subject in subjects} == {0}  # queued
    server = aiosmtpd_factory()
    write_cron_config(home, server.port)
    env = {**os.environ, "HOME": str(home)}
    point = cp.CrashPoint("sendto", write)
    stopped = cp.run(["queue", "run"], env, point=point, signal=stop)
    assert stopped.code in (130, 143, 75, -2, -15), stopped.stderr
    assert b"Traceback" not in stopped.stderr
    final = subprocess.run([*MAILCLI, "queue", "run"], env=env, capture_output=True, check=False)
    assert final.returncode == 0, final.stderr
    received = {r.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for r in server.received}
    assert received == set(subjects)
