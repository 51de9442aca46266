"""The sendmail queue under crashes and damage.

A kill between any two system calls of a spool operation leaves each entry whole in the
queue or whole in failed/, never a JSON without its message in the queue; a damaged
entry is quarantined in failed/ with its reason, reported in one line, and `queue run`
goes on with the other entries. Never exit 70.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, queue_dir, run_cli, write_cron_config
from tests.servers import require
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]
BAD = "bad@example.test"


def enqueue(home: Path, subject: str, recipient: str = "root@example.test") -> str:
    """Queue one message (the server is down: queued, exit 0); returns its id."""
    before = set(queue_dir(home).glob("*.json")) if queue_dir(home).exists() else set()
    result = run_cli(["sendmail", "-i", recipient], input=f"Subject: {subject}\n\nbody\n")
    assert result.code == 0, result.stderr
    (new,) = set(queue_dir(home).glob("*.json")) - before
    return new.stem


def subjects(server: AioSmtpd) -> list[str]:
    return [r.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for r in server.received]


def queue_run(*prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *MAILCLI, "queue", "run"], capture_output=True, text=True, check=False
    )


def listed() -> dict[str, list[dict[str, object]]]:
    result = run_cli(["queue", "list", "--json"])
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _damage(queue: Path, entry_id: str, how: str) -> None:
    meta, message = queue / f"{entry_id}.json", queue / f"{entry_id}.eml"
    if how == "half-moved":  # the state a kill made between the old move's two renames
        (queue / "failed").mkdir(mode=0o700, exist_ok=True)
        message.rename(queue / "failed" / message.name)
    elif how == "message-missing":
        message.unlink()
    elif how == "unreadable-json":
        meta.write_bytes(b'{"id": "' + entry_id.encode() + b'", \xff')
    elif how == "wrong-fields":
        document = json.loads(meta.read_text())
        meta.write_text(json.dumps({**document, "recipients": "root@example.test"}))
    elif how == "incomplete-enqueue":  # sendmail killed between message and JSON
        meta.unlink()
    elif how == "json-nested-too-deep":  # past the parser's recursion limit
        meta.write_bytes(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    "how",
    [
        "half-moved",
        "message-missing",
        "unreadable-json",
        "wrong-fields",
        "incomplete-enqueue",
        "json-nested-too-deep",
    ],
)
def test_a_damaged_entry_is_quarantined_and_the_others_are_sent(
    aiosmtpd_factory: Factory, isolated_environment: Path, how: str
) -> None:
    home = isolated_environment
    write_cron_config(home, free_port())
    ids = [enqueue(home, f"s{n}") for n in range(3)]
    queue = queue_dir(home)
    _damage(queue, ids[1], how)
    server = aiosmtpd_factory()
    write_cron_config(home, server.port)

    done = queue_run()
    assert done.returncode == 69, done.stderr  # something needs a person; never 70
    assert sorted(subjects(server)) == ["s0", "s2"]  # the run went on past the bad one
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and ids[1] in errors[0] and "quarantined" in errors[0], errors
    assert "Traceback" not in done.stderr
    failed = queue / "failed"
    assert (failed / f"{ids[1]}.reason").read_text().strip()
    if how != "message-missing":  # nobody's mail is deleted: it is kept in failed/
        assert b"Subject: s1" in (failed / f"{ids[1]}.eml").read_bytes()
    assert sorted(p.name for p in queue.iterdir() if p.is_file() and p.name != ".lock") == []
    document = listed()
    assert document["queue"] == []
    assert [d["id"] for d in document["damaged"]] == [ids[1]]
    again = queue_run()  # quarantined once: nothing left to report
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_a_damaged_entry_is_listed_before_any_run(isolated_environment: Path) -> None:
    home = isolated_environment
    write_cron_config(home, free_port())
    good, bad = enqueue(home, "good"), enqueue(home, "bad")
    _damage(queue_dir(home), bad, "message-missing")
    document = listed()
    assert [e["id"] for e in document["queue"]] == [good]
    (damaged,) = document["damaged"]
    assert damaged["id"] == bad and "missing" in str(damaged["reason"])


def test_an_enqueue_in_progress_is_left_alone(
    aiosmtpd_factory: Factory, isolated_environment: Path
) -> None:
    """A message without JSON whose writer still holds its flock is not an orphan."""
    home = isolated_environment
    write_cron_config(home, free_port())
    entry = enqueue(home, "live")
    queue = queue_dir(home)
    (queue / f"{entry}.json").unlink()
    server = aiosmtpd_factory()
    write_cron_config(home, server.port)
    fd = os.open(queue / f"{entry}.eml", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as the live sendmail holds it
        assert queue_run().returncode == 0
        assert (queue / f"{entry}.eml").exists() and not (queue / "failed").exists()
    finally:
        os.close(fd)
    assert queue_run().returncode == 69  # its writer is gone: now an incomplete enqueue
    assert (queue / "failed" / f"{entry}.eml").exists()
    assert server.received == []


@pytest.mark.parametrize("syscall", ["rename", "linkat", "unlink"])
def test_queue_run_killed_at_every_rename_link_and_unlink(
    aiosmtpd_factory: Factory, isolated_environment: Path, tmp_path: Path, syscall: str
) -> None:
    """Kill a real `queue run` with SIGKILL at the N-th call of `syscall`, for every N
    that occurs in a run that moves one refused entry to failed/ and delivers two; then
    a plain `queue run` must finish the job."""
    require("strace")
    home = isolated_environment
    write_cron_config(home, free_port())
    refused_id = enqueue(home, "refused", BAD)
    enqueue(home, "good 1")
    enqueue(home, "good 2")
    template = tmp_path / "template"
    shutil.copytree(queue_dir(home), template)
    server = aiosmtpd_factory()
    server.refuse_rcpt = {BAD}
    write_cron_config(home, server.port)
    kill_points = 0
    for when in range(1, 40):
        shutil.rmtree(queue_dir(home))
        shutil.copytree(template, queue_dir(home))
        server.received.clear()
        inject = f"inject={syscall}:signal=SIGKILL:when={when}"
        killed = queue_run("strace", "-f", "-qq", "-o", "/dev/null", "-e", inject)
        if killed.returncode not in (-9, 128 + 9):
            assert killed.returncode == 69, killed.stderr  # ran to the end: no such call
            break
        kill_points += 1
        final = queue_run()
        assert final.returncode in (0, 69), (when, final.stderr)  # never 70
        assert "Traceback" not in final.stderr
        _assert_settled(home, refused_id, server, when)
    print(f"{syscall}: {kill_points} kill points")
    assert kill_points >= {"rename": 4, "linkat": 1, "unlink": 3}[syscall], kill_points


def _assert_settled(home: Path, refused_id: str, server: AioSmtpd, when: int) -> None:
    queue = queue_dir(home)
    assert {"good 1", "good 2"} <= set(subjects(server)), when  # nothing lost
    assert "refused" not in subjects(server)
    assert listed()["queue"] == [], when
    assert sorted(p.name for p in queue.glob("*.json")) == []
    failed = queue / "failed"
    entry = json.loads((failed / f"{refused_id}.json").read_text())  # whole, in failed/
    assert entry["id"] == refused_id and entry["recipients"] == [BAD]
    assert b"Subject: refused" in (failed / f"{refused_id}.eml").read_bytes()
    assert sorted(p.name for p in failed.iterdir() if not p.name.startswith(".")) == [
        f"{refused_id}.eml",
        f"{refused_id}.json",
    ], when
