"""The trail under attack: a hostile server reply stays one line, syslog gets mail.info
datagrams, a log that cannot be written (full disk, a folder, a symlink, no /dev/log)
changes nothing but a warning, and a burst of 50 concurrent sendmail jobs leaves 50
whole lines. Every line is read with the tests' one parser (`helpers.read_trail`)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    MAILCLI,
    Result,
    imported_by,
    parse_trail_line,
    queue_dir,
    read_trail,
    run_cli,
    write_cron_config,
)
from tests.servers.ports import free_port
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpscripts import smtp_server

# A reply to the final dot with every kind of byte a log line must survive: a second
# line, a bare CR, NUL, quotes, a backslash, UTF-8, and 1 KB of text.
HOSTILE_TEXT = '2.0.0 Ok\x00 "quoted" \\ a\rb é ' + "x" * 1024 + " queued as Q1"
HOSTILE = f'250-first line with "quotes"\r\n250 {HOSTILE_TEXT}'


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(smtp_server()) as scripted:
        yield scripted


def send_args(server: ScriptedServer, *args: str) -> list[str]:
    """mailcli's arguments sending a message to `server` in clear, then `args`."""
    where = ["--host", server.host, "--port", str(server.port), "--security", "none"]
    message = ["--from", "a@example.test", "--to", "b@example.test", "--body", "x"]
    return ["send", *where, *message, *args]


def send(server: ScriptedServer, *args: str, env: dict[str, str] | None = None) -> Result:
    return run_cli(send_args(server, *args), env=env)


def delivered(server: ScriptedServer) -> bool:
    return any(line.upper() == "DATA" for line in server.received)


def test_a_hostile_reply_stays_one_line_and_reads_back_exactly(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    with ScriptedServer(smtp_server(queued=HOSTILE)) as hostile:
        assert send(hostile, "--log", str(log)).code == 0
    data = log.read_bytes()
    assert data.count(b"\n") == 1 and b"\r" not in data and b"\0" not in data
    (line,) = read_trail(log)
    assert line["reply"] == f'250 first line with "quotes"\n{HOSTILE_TEXT}'
    assert line["queue_id"] == "Q1"


def test_quit_after_rcpt_is_a_stop_as_asked_not_a_failure(
    tmp_path: Path, server: ScriptedServer
) -> None:
    log = tmp_path / "mail.log"
    assert send(server, "--quit-after", "rcpt", "--log", str(log)).code == 0
    (line,) = read_trail(log)
    assert (line["outcome"], line["exit"], line.get("reply")) == ("stopped", "0", None)
    assert line.recipients() == {"b@example.test": ("250", "-")}


TRAIL_MODULES = ["mailcli.trail.line", "mailcli.trail.records", "mailcli.trail.sink"]


def test_the_trail_is_imported_only_when_a_log_is_asked_for(tmp_path: Path) -> None:
    """Start-up: without --log and without a config file, neither the trail nor the
    config module is imported; a failed send (nothing listens) goes the whole way."""
    where = ["--host", "127.0.0.1", "--port", str(free_port()), "--security", "none"]
    argv = ["send", *where, "--from", "a@example.test", "--to", "b@example.test", "--body", "x"]
    assert imported_by(argv, [*TRAIL_MODULES, "mailcli.config"]) == []
    logged = imported_by([*argv, "--log", str(tmp_path / "mail.log")], TRAIL_MODULES)
    assert logged == TRAIL_MODULES
    assert read_trail(tmp_path / "mail.log")[0]["exit"] == "69"  # connection refused


def test_syslog_gets_one_mail_info_datagram_and_a_failure_as_mail_err(
    tmp_path: Path, server: ScriptedServer
) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(str(path))
        syslog.settimeout(10)
        env = {"MAILCLI_SYSLOG_SOCKET": str(path)}
        assert send(server, "--log", "syslog", env=env).code == 0
        sent = syslog.recv(65536).decode()
        with ScriptedServer(smtp_server(answers={"MAIL": "550 5.7.1 no"})) as refusing:
            assert send(refusing, "--log", "syslog", env=env).code == 69
        refused = syslog.recv(65536).decode()
    header = r"<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mailcli\[\d+\]: (.*)"
    found = re.fullmatch(header, sent)
    assert found and found.group(1) == "22", sent  # facility mail, severity info
    assert parse_trail_line(found.group(2))["command"] == "send"
    failed = re.fullmatch(header, refused)
    assert failed and failed.group(1) == "19", refused  # mail.err
    line = parse_trail_line(failed.group(2))
    assert (line["exit"], line["outcome"]) == ("69", "refused") and "5.7.1" in line["error"]


def test_no_syslog_socket_is_a_warning_and_the_mail_still_goes(
    tmp_path: Path, server: ScriptedServer
) -> None:
    env = {"MAILCLI_SYSLOG_SOCKET": str(tmp_path / "absent")}
    result = send(server, "--log", "syslog", env=env)
    assert result.code == 0 and delivered(server)
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("mailcli: warning: cannot log to syslog through ")


@pytest.mark.parametrize("kind", ["folder", "symlink", "missing folder"])
def test_a_log_that_cannot_be_opened_is_one_warning_and_the_same_outcome(
    tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "target.log"
    target.write_bytes(b"")
    log = {
        "folder": tmp_path,
        "symlink": tmp_path / "link.log",
        "missing folder": tmp_path / "none" / "mail.log",
    }[kind]
    if kind == "symlink":
        log.symlink_to(target)
    with ScriptedServer(smtp_server(answers={"RCPT": "550 5.1.1 unknown"})) as refusing:
        result = send(refusing, "--log", str(log))
    assert result.code == 67  # the run's own status: its recipient was refused
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "cannot write the log" in warnings[0]
    if kind == "symlink":
        assert "symbolic link" in warnings[0] and target.read_bytes() == b""


STRACE = shutil.which("strace")


@pytest.mark.skipif(STRACE is None and not os.environ.get("CI"), reason="needs strace")
def test_a_full_disk_under_the_log_changes_nothing_but_a_warning(
    tmp_path: Path, server: ScriptedServer
) -> None:
    assert STRACE is not None
    log = tmp_path / "mail.log"
    command = [STRACE, "-f", "-qq", "-o", "/dev/null", "-P", str(log), "-e", "trace=write"]
    command += ["-e", "inject=write:error=ENOSPC", *MAILCLI, *send_args(server, "--log", str(log))]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert delivered(server) and log.read_bytes() == b""
    assert done.stderr.decode().splitlines() == [
        f"mailcli: warning: cannot write the log {log}: No space left on device; the run goes on"
    ]


UNSHARE = shutil.which("unshare")


@pytest.mark.skipif(UNSHARE is None and not os.environ.get("CI"), reason="needs unshare")
def test_a_log_on_a_read_only_file_system_changes_nothing_but_a_warning(
    tmp_path: Path, server: ScriptedServer
) -> None:
    """Root writes through file modes, so the folder is bind-mounted read-only in a
    private mount namespace, for mailcli alone."""
    assert UNSHARE is not None
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "mail.log"
    log.write_bytes(b"earlier\n")
    read_only = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    command = [UNSHARE, "--mount", "--propagation", "private", "--", "sh", "-c", read_only]
    command += [str(folder), *MAILCLI, *send_args(server, "--log", str(log))]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert delivered(server) and log.read_bytes() == b"earlier\n"
    assert done.stderr.decode().splitlines() == [
        f"mailcli: warning: cannot write the log {log}: Read-only file system; the run goes on"
    ]


JOBS = 50


def test_a_burst_of_50_sendmail_jobs_leaves_50_whole_lines(tmp_path: Path) -> None:
    """50 processes started together, the server down: each queues its message and
    appends its line; none is lost, torn or interleaved with another."""
    home = tmp_path / "home"
    log = tmp_path / "mail.log"
    write_cron_config(home, free_port())
    config = home / ".config" / "mailcli" / "config.toml"
    config.write_text(f'log = "{log}"\n' + config.read_text())
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    jobs = [
        subprocess.Popen(
            [*MAILCLI, "sendmail", "-i", f"user{number}@example.test"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        for number in range(JOBS)
    ]
    for number, job in enumerate(jobs):  # all started; now each gets its message
        assert job.stdin is not None
        job.stdin.write(f"Subject: job {number}\n\n{'y' * 200}\n".encode())
        job.stdin.close()
    for job in jobs:
        assert job.wait(timeout=300) == 0 and job.stderr is not None, job.args
        assert b"queued" in job.stderr.read()
        job.stderr.close()
    lines = read_trail(log)
    assert len(lines) == JOBS
    assert {line["outcome"] for line in lines} == {"queued"}
    recipients = {next(iter(line.recipients())) for line in lines}
    assert recipients == {f"user{number}@example.test" for number in range(JOBS)}
    entries = {path.stem for path in queue_dir(home).glob("*.json")}
    assert {line["spool_id"] for line in lines} == entries and len(entries) == JOBS


# A tmpfs of two pages: the log's 511 lines of "earlier\n" (4,088 octets) leave 8 octets
# in its page, and a filler takes the other page, so the first run's line is cut after 8.
SHORT_WRITE = """
mount -t tmpfs -o size=8k tmpfs "$0" || exit 99
yes earlier | head -n 511 > "$0/mail.log"
head -c 4096 /dev/zero > "$0/filler" || exit 98
"$@"; first=$?
rm "$0/filler"
"$@"; second=$?
cp "$0/mail.log" "$0.copy"
exit $((first * 16 + second))
"""


@pytest.mark.skipif(UNSHARE is None and not os.environ.get("CI"), reason="needs unshare")
def test_a_line_cut_short_by_a_full_disk_never_swallows_the_next(
    tmp_path: Path, server: ScriptedServer
) -> None:
    """A real short write (a tmpfs that fills mid-line, in a private mount namespace):
    that run warns and goes on; the next run's line starts on a line of its own instead
    of continuing the cut one, so it reads back whole."""
    assert UNSHARE is not None
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "mail.log"
    command = [UNSHARE, "--mount", "--propagation", "private", "--", "sh", "-c", SHORT_WRITE]
    command += [str(folder), *MAILCLI, *send_args(server, "--log", str(log))]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    warning = f"mailcli: warning: cannot write the log {log}: short write (8 of "
    assert done.stderr.decode().startswith(warning), done.stderr
    lines = Path(f"{folder}.copy").read_bytes().split(b"\n")
    assert lines[:511] == [b"earlier"] * 511 and lines[-1] == b""
    cut, whole = lines[511:-1]
    assert cut == b"time=202", lines[511:]  # the first run's 8 octets
    assert parse_trail_line(whole.decode())["outcome"] == "sent"
