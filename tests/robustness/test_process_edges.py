"""The edges of the process: a closed stdout, stderr or stdin, a reader that goes away
(SIGPIPE), and the signals that end a run (SIGTERM, SIGHUP, SIGINT).

Every case runs the real `python -m mailcli` with the descriptors and pipes a shell
would give it, against Dovecot or a scripted server:
- a closed stdout (`>&-`) is 74 with one line on stderr; a closed stderr changes no
  exit status; a closed stdin is 66;
- a reader that leaves early (`| head -1`) is 141 (128 + SIGPIPE), quietly, for every
  command that writes data to stdout;
- SIGTERM, SIGHUP and SIGINT during `retr -o` remove the hidden partial file and exit
  128 + the signal's number.

Determinism: a reader that "leaves early" either closed its end before mailcli started
(every write fails), or reads one line of an output larger than the pipe can hold (the
writer must block, so it must see the reader leave). The signal tests send the signal
while the server holds the message half sent, with the partial file on disk.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.helpers import MAILCLI, Mailcli, write_cron_config
from tests.servers import require
from tests.servers.accounts import Account, numbered_message
from tests.servers.fixtures import Mailbox
from tests.servers.pop3scripts import pop3_server
from tests.servers.ports import free_port
from tests.servers.scripted import Conn, HangUp, Script, ScriptedServer
from tests.servers.smtpd import AioSmtpd

SIGPIPE_EXIT = 128 + signal.SIGPIPE
SMALL_PIPE = 4096  # F_SETPIPE_SZ's floor: one page


def run_closed(
    args: Sequence[str], env: dict[str, str], redirections: str
) -> subprocess.CompletedProcess[bytes]:
    """`python -m mailcli ARGS REDIRECTIONS` through sh (`>&-` closes stdout for real;
    a pipe or /dev/null would not)."""
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {redirections}', "sh", *MAILCLI, *args],
        capture_output="2>&-" not in redirections,
        stdout=subprocess.PIPE if "2>&-" in redirections else None,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def stderr_lines(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    return done.stderr.decode(errors="replace").splitlines()


@pytest.fixture
def filled(mailcli: Mailcli, mailbox: Mailbox) -> Mailcli:
    mailbox.drop(numbered_message(1), numbered_message(2))
    return mailcli


def as_process(pop: Mailcli, *command: str) -> tuple[list[str], dict[str, str]]:
    return [*command, *pop.account.args()], pop.account.env()


# -- 13: closed stdout, stderr, stdin -------------------------------------------------------

DATA_COMMANDS = [["list"], ["uidl"], ["stat"], ["retr", "1"], ["top", "1", "0"], ["capa"]]


@pytest.mark.parametrize("command", DATA_COMMANDS, ids=lambda c: c[0])
def test_a_closed_stdout_is_74_with_one_line(filled: Mailcli, command: list[str]) -> None:
    done = run_closed(*as_process(filled, *command), ">&-")
    assert done.returncode == 74, done.stderr
    lines = stderr_lines(done)
    assert len(lines) == 1, lines
    assert lines[0] == "mailcli: error: cannot write to standard output: it is closed"


@pytest.mark.parametrize("command", [["list"], ["retr", "1"]], ids=lambda c: c[0])
def test_closed_stdout_and_stderr_is_still_74(filled: Mailcli, command: list[str]) -> None:
    done = run_closed(*as_process(filled, *command), ">&- 2>&-")
    assert done.returncode == 74


def test_a_closed_stderr_changes_no_exit_status(filled: Mailcli) -> None:
    listed = run_closed(*as_process(filled, "uidl"), "2>&-")
    assert listed.returncode == 0
    assert listed.stdout.decode().splitlines()[1].startswith("2\t")
    missing = run_closed(*as_process(filled, "retr", "9"), "2>&-")
    assert missing.returncode == 66
    assert missing.stdout == b""


def test_a_closed_stdin_is_66_not_a_crash() -> None:
    args = ["send", "--host", "127.0.0.1", "--port", str(free_port()), "--security", "none"]
    done = run_closed([*args, "--from", "a@example.test", "--to", "b@example.test"], {}, "<&-")
    assert done.returncode == 66, done.stderr
    assert stderr_lines(done) == ["mailcli: error: cannot read standard input: it is closed"]


# -- 14: the reader goes away: 141, quietly -------------------------------------------------


def run_into_closed_pipe(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """mailcli writing into a pipe whose reader has already gone (`mailcli ... | true`
    once true has exited): every write to stdout fails with EPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.Popen(
            [*MAILCLI, *args], stdout=writer, stderr=subprocess.PIPE, env={**os.environ, **env}
        )
    finally:
        os.close(writer)


def finished(process: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    assert process.stderr is not None
    stderr = process.stderr.read()
    return process.wait(timeout=60), stderr


def run_and_leave_after_one_line(
    args: Sequence[str], env: dict[str, str]
) -> tuple[int, bytes, bytes]:
    """`mailcli ARGS | head -1` with a one-page pipe: the first line is read, then the
    reader leaves. The output must be larger than the pipe, so that the writer blocks
    and necessarily sees the reader go."""
    reader, writer = os.pipe()
    fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, SMALL_PIPE)
    process = subprocess.Popen(
        [*MAILCLI, *args], stdout=writer, stderr=subprocess.PIPE, env={**os.environ, **env}
    )
    os.close(writer)
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(reader, 1)
        assert byte, f"mailcli ended before writing a line: {line!r}"
        line += byte
    os.close(reader)
    code, stderr = finished(process)
    return code, line, stderr


def test_retr_into_a_reader_that_leaves_is_141_quietly(mailcli: Mailcli, mailbox: Mailbox) -> None:
    body = b"".join(b"line %06d of a long message\n" % n for n in range(40_000))  # ~1.2 MB
    mailbox.drop(numbered_message(1, body))
    code, line, stderr = run_and_leave_after_one_line(*as_process(mailcli, "retr", "1"))
    assert line.endswith(b"\r\n")  # the message as the server sends it
    assert (code, stderr) == (SIGPIPE_EXIT, b"")


@pytest.mark.parametrize("command", ["list", "uidl"])
def test_a_listing_into_a_reader_that_leaves_is_141_quietly(
    mailcli: Mailcli, mailbox: Mailbox, command: str
) -> None:
    mailbox.drop(*(numbered_message(n) for n in range(1, 301)))  # ~6 KB of lines
    code, line, stderr = run_and_leave_after_one_line(*as_process(mailcli, command))
    assert line.startswith(b"1\t")
    assert (code, stderr) == (SIGPIPE_EXIT, b"")


@pytest.mark.parametrize("command", [["stat"], ["top", "1", "0"], ["stat", "--json"]], ids=" ".join)
def test_pop3_data_into_a_gone_reader_is_141_quietly(filled: Mailcli, command: list[str]) -> None:
    code, stderr = finished(run_into_closed_pipe(*as_process(filled, *command)))
    assert (code, stderr) == (SIGPIPE_EXIT, b"")


def test_local_tables_into_a_gone_reader_are_141_quietly(isolated_environment: Path) -> None:
    write_cron_config(isolated_environment, free_port())  # nothing listens there: it queues
    queued = subprocess.run(
        [*MAILCLI, "sendmail", "-i", "root@example.test"],
        input=b"Subject: q\n\nbody\n",
        capture_output=True,
        check=False,
    )
    listed = subprocess.run([*MAILCLI, "queue", "list"], capture_output=True, check=False)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1, queued.stderr
    for command in (["account", "list"], ["queue", "list"], ["--version"], ["--help"]):
        code, stderr = finished(run_into_closed_pipe(command, {}))
        assert (code, stderr) == (SIGPIPE_EXIT, b""), command


def test_send_result_into_a_gone_reader_is_141_and_the_message_is_sent(
    aiosmtpd_factory: Callable[..., AioSmtpd],
) -> None:
    server = aiosmtpd_factory()
    account = Account.smtpd(server, security="none")
    args = ["send", *account.args(), "--from", "a@example.test", "--to", "b@example.test"]
    code, stderr = finished(run_into_closed_pipe([*args, "--body", "hello"], {}))
    assert (code, stderr) == (SIGPIPE_EXIT, b"")
    assert len(server.received) == 1


# -- 15: signals end a run in order: nothing left behind, 128 + signal ----------------------

HALF = 1024 * 1024


def stalling_retr(release: threading.Event) -> Script:
    """A POP3 server that sends the first megabyte of RETR's answer, then holds the rest
    until `release` is set (the test's signal lands meanwhile)."""

    def half_then_hold(conn: Conn, line: str) -> None:
        conn.send("+OK")
        conn.send_bytes(b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * (HALF // 80))
        release.wait(60)
        raise HangUp

    return pop3_server([], {"RETR": half_then_hold, "LIST": f"+OK 1 {2 * HALF}"})


def partial_files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def wait_for_partial_file(folder: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the hidden temporary holds part of the message (mailcli is then blocked
    reading the rest). The deadline only stops a broken run from hanging the suite."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.stat().st_size >= HALF // 2 for p in partial_files(folder)):
            return
        time.sleep(0.02)
    raise AssertionError(f"no partial file appeared (exit {process.poll()})")


@pytest.fixture
def stalled_server() -> Iterator[ScriptedServer]:
    release = threading.Event()
    with ScriptedServer(stalling_retr(release)) as server:
        yield server
        release.set()


STOPPING = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]


@pytest.mark.parametrize("stop", STOPPING, ids=lambda s: s.name)
def test_a_signal_during_retr_to_a_file_leaves_nothing_and_exits_128_plus_it(
    stalled_server: ScriptedServer, tmp_path: Path, stop: signal.Signals
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    account = Account.scripted(stalled_server)
    args = [*MAILCLI, "retr", "1", "-o", str(folder / "msg.eml"), *account.args()]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, env={**os.environ, **account.env()})
    wait_for_partial_file(folder, process)
    process.send_signal(stop)
    code, stderr = finished(process)
    assert code == 128 + stop, stderr
    assert b"Traceback" not in stderr
    assert partial_files(folder) == []


# A POP3 server with one short message.
serving_retr = pop3_server(
    [], {"RETR": ("+OK", "Subject: short", "", "body", ".")}, otherwise="+OK 1 30"
)


def test_sigterm_between_creating_the_partial_file_and_owning_it_leaves_nothing(
    tmp_path: Path,
) -> None:
    """The narrowest window: SIGTERM on entry to the first system call after the
    temporary's openat (Python's fstat of the new descriptor, inside PartialFile's
    constructor), before anything holds the file to discard it."""
    require("strace")
    folder = tmp_path / "out"
    folder.mkdir()
    with ScriptedServer(serving_retr) as server:
        account = Account.scripted(server)
        args = ["retr", "1", "-o", str(folder / "msg.eml"), *account.args()]
        env = cp.base_env(tmp_path / "home", **account.env())
        counted, points = cp.count(args, env, tmp_path / "count.log", syscalls=OPEN_AND_STAT)
        assert counted.code == 0, counted.stderr
        created = next(i for i, p in enumerate(points) if ".msg.eml." in p.label)
        after = next(p for p in points[created + 1 :] if p.syscall != "openat")
        for leftover in partial_files(folder):
            leftover.unlink()
        stopped = cp.run(args, env, point=after, signal="SIGTERM")
    assert stopped.code == 128 + signal.SIGTERM, (after, stopped.stderr)
    assert partial_files(folder) == []


OPEN_AND_STAT = ("openat", "newfstatat", "fstat", "statx")


def test_sigterm_during_fetch_exits_143_keeping_what_is_complete(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    """SIGTERM at the first write of the second message into Maildir's tmp/: the one
    in flight is abandoned (tmp/ empty), the first is delivered and recorded, the next
    run brings the rest, once each."""
    require("strace")
    messages = [numbered_message(n, b"body %d\n" % n) for n in (1, 2, 3)]
    mailbox.drop(*messages)

    def run_in(root: Path) -> tuple[list[str], dict[str, str], Path]:
        dest = root / "dest"
        for sub in ("tmp", "new", "cur"):
            (dest / sub).mkdir(parents=True)
        args = ["fetch", "--keep", "--to", f"maildir:{dest}", *mailcli.account.args()]
        return args, cp.base_env(root / "home", **mailcli.account.env()), dest

    args, env, _ = run_in(tmp_path / "count")
    counted, points = cp.count(args, env, tmp_path / "count.log")
    assert counted.code == 0, counted.stderr
    second = [p for p in points if p.what == "Maildir tmp/" and p.syscall == "write"][1]
    args, env, dest = run_in(tmp_path / "stop")
    stopped = cp.run(args, env, point=second, signal="SIGTERM")
    assert stopped.code == 128 + signal.SIGTERM, (second, stopped.stderr)
    assert list((dest / "tmp").iterdir()) == []
    assert cp.run(args, env).code == 0
    delivered = sorted(p.read_bytes() for p in (dest / "new").iterdir())
    assert delivered == sorted(messages)
