"""Several accounts in one `fetch` run (`--all-accounts`, `-a A -a B`), and the rule that
turns their outcomes into one exit status.

The contract:
- Each account runs in a child process of its own (fork), at most `jobs` at a time,
  started in the order given. A child is an ordinary single-account fetch: its own
  lock, state, journal and recovery, so a child that dies (kill -9 included) leaves
  only what any killed fetch leaves, and the others go on. Threads would not do: the
  mbox's fcntl locks belong to a process, so two accounts appending to one mbox from one
  process would not exclude each other.
- A child's stdout (its summary, as JSON) comes back on a pipe of its own; its stderr
  (warnings, errors, `--trace`) comes back line by line to `relay`, which the CLI
  prefixes with the account's name. Its stdin is /dev/null: nobody is asked for a
  password in a run of several accounts (use the keyring or password_command).
- A child is in a process group of its own, so a terminal's Ctrl-C reaches the parent
  only; SIGINT, SIGTERM or SIGHUP in the parent are passed on to every running child as
  SIGTERM (their orderly stop: completed messages recorded), the parent waits for them
  all, relaying what they still say, and then stops as the signal says (128 + N).
- A child's exit status is its account's status. One killed by a signal it was not
  sent by us (kill -9, the OOM killer) is 75: its fetch is safe to run again.
- The run's status is `most_severe` of the accounts' statuses (see there).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailcli.errors import ExitStatus, Stopped, TempFailError

# The run's exit status is the first of these that any account had, else the largest
# other non-zero status, else 0. Order: a bug first; then what only the user can fix
# on this machine (the config, credentials, local files and disks), then what is wrong
# with a server or the data it sent, then what a rerun may well cure.
SEVERITY: tuple[ExitStatus, ...] = (
    ExitStatus.SOFTWARE,  # 70
    ExitStatus.CONFIG,  # 78
    ExitStatus.USAGE,  # 64
    ExitStatus.NOPERM,  # 77
    ExitStatus.CANTCREAT,  # 73
    ExitStatus.IOERR,  # 74
    ExitStatus.NOINPUT,  # 66
    ExitStatus.DATAERR,  # 65
    ExitStatus.PROTOCOL,  # 76
    ExitStatus.NOHOST,  # 68
    ExitStatus.UNAVAILABLE,  # 69
    ExitStatus.TEMPFAIL,  # 75
)

_STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def most_severe(statuses: Iterable[int]) -> int:
    """The one exit status of a run of several accounts (the order is `SEVERITY`)."""
    failed = {status for status in statuses if status != ExitStatus.OK}
    for status in SEVERITY:
        if status in failed:
            return int(status)
    return max(failed, default=int(ExitStatus.OK))


@dataclass
class AccountRun:
    """One account's child: what it said and how it ended."""

    name: str
    pid: int = 0
    status: int = 0
    document: Any = None  # its JSON summary, None when it printed none
    signal: int | None = None  # the signal that killed it, if one did
    _output: bytearray = field(default_factory=bytearray)
    _errors: bytearray = field(default_factory=bytearray)


Work = Callable[[str], int]  # runs one account in the child, printing JSON; its status
Relay = Callable[[str, str], None]  # (account, a line of its stderr)


def run_accounts(names: Sequence[str], jobs: int, work: Work, relay: Relay) -> list[AccountRun]:
    """Each account's `work` in a child, at most `jobs` at once; their runs, in order."""
    runs = [AccountRun(name) for name in names]
    waiting = deque(runs)
    selector = selectors.DefaultSelector()
    running: dict[int, AccountRun] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                run = waiting.popleft()
                running[_start(run, work, selector)] = run
            _pump(selector, running, relay)
    except BaseException:
        _stop_children(selector, running, relay)
        raise
    finally:
        selector.close()
    return runs


def _start(run: AccountRun, work: Work, selector: selectors.BaseSelector) -> int:
    """Fork the child for `run`; signals wait until the parent knows its pid."""
    others = [key.fd for key in selector.get_map().values()]  # other children's pipes
    output_r, output_w = os.pipe()
    errors_r, errors_w = os.pipe()
    sys.stdout.flush()  # what is buffered now is the parent's, never printed twice
    sys.stderr.flush()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        pid = _fork(run.name)
        if pid == 0:
            for descriptor in (output_r, errors_r, *others):
                os.close(descriptor)
            _child(run.name, work, output_w, errors_w, previous)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    os.close(output_w)
    os.close(errors_w)
    run.pid = pid
    selector.register(output_r, selectors.EVENT_READ, (run, run._output))
    selector.register(errors_r, selectors.EVENT_READ, (run, run._errors))
    return pid


def _fork(name: str) -> int:
    try:
        return os.fork()
    except OSError as exc:  # out of processes or memory: the system's limit, for now
        raise TempFailError(f"cannot start the fetch of account {name!r}: {exc}") from exc


def _child(
    name: str, work: Work, output: int, errors: int, mask: set[int | signal.Signals]
) -> None:
    """The child's whole life: standard streams on the pipes, the account's fetch, exit
    with its status (never returning into the parent's code)."""
    status = int(ExitStatus.SOFTWARE)
    try:
        os.setpgid(0, 0)
        sys.stdin = open(os.devnull)  # noqa: SIM115 -- the child's for its whole life
        sys.stdout = open(output, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        sys.stderr = open(errors, "w", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        status = work(name)
    except Stopped as stopped:
        status = int(stopped.exit_status)
    except KeyboardInterrupt:
        status = int(ExitStatus.INTERRUPTED)
    except BaseException:  # whatever it was, the parent's code must not go on here
        status = int(ExitStatus.SOFTWARE)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # the parent may be gone
                stream.flush()
        os._exit(status)


def _pump(selector: selectors.BaseSelector, running: dict[int, AccountRun], relay: Relay) -> None:
    """Read what the children wrote; reap the ones whose pipes both closed."""
    for key, _ in selector.select():
        run, buffer = key.data
        chunk = os.read(key.fd, 65536)
        if chunk:
            buffer.extend(chunk)
            if buffer is run._errors:
                _relay_lines(run, relay, final=False)
            continue
        selector.unregister(key.fd)
        os.close(key.fd)
        if not any(key.data[0] is run for key in selector.get_map().values()):
            _reap(run, relay)
            del running[run.pid]


def _relay_lines(run: AccountRun, relay: Relay, *, final: bool) -> None:
    *lines, rest = bytes(run._errors).split(b"\n")
    if final and rest:
        lines.append(rest)
        rest = b""
    for line in lines:
        relay(run.name, line.decode("utf-8", "replace"))
    run._errors[:] = rest


def _reap(run: AccountRun, relay: Relay) -> None:
    _relay_lines(run, relay, final=True)
    _, wait_status = os.waitpid(run.pid, 0)
    if os.WIFSIGNALED(wait_status):
        run.signal = os.WTERMSIG(wait_status)
        run.status = int(ExitStatus.TEMPFAIL)
    else:
        run.status = os.waitstatus_to_exitcode(wait_status)
    try:
        run.document = json.loads(run._output) if run._output.strip() else None
    except ValueError:
        run.document = None  # cut short by its death: no summary


def _stop_children(
    selector: selectors.BaseSelector, running: dict[int, AccountRun], relay: Relay
) -> None:
    """The parent was stopped: stop every child the orderly way, and wait for them
    (another Ctrl-C meanwhile must not leave them unreaped and their output unread)."""
    signal.signal(signal.SIGINT, _ignore)
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    while running:
        _pump(selector, running, relay)


def _ignore(signum: int, frame: object) -> None:
    """Not SIG_IGN, which the programs started later would inherit."""
