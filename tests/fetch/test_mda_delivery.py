"""`fetch --to mda:CMD` never hands an MDA part of a message, whenever mailcli dies.

mailcli runs as a real process against the real Dovecot under strace, which kills it
with SIGKILL on entry to its N-th write(2), for every N of a small run (counted first by
the same run, traced). The MDA stores its stdin atomically, one file per message (a
temporary file, then a rename), as a real MDA does: a file appears only when the MDA saw
the end of its input and exited 0. So a truncated file is a message the MDA was told was
complete. After each kill every file must be one whole message (byte for byte what the
server holds, CRLF back to LF); a completing run then delivers every message at least
once and at most twice (the documented MDA window: delivered, not yet recorded).

strace traces only mailcli (no -f): its N-th write is mailcli's, never the MDA's. An
MDA that outlives the kill keeps mailcli's stdout and stderr, so `subprocess.run` (which
reads both to their end) returns only after that MDA is done: no sleep, no timing.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import MAILCLI
from tests.servers.accounts import Account
from tests.servers.fixtures import Mailbox

KILLED = (-9, 137)  # strace re-raises the tracee's SIGKILL, or a shell reports 128 + 9


def server_message(number: int, lines: int) -> bytes:
    """What the server holds (LF; Dovecot sends CRLF): a dot line to stuff, a From line;
    `lines` of padding make one message span several 256 KiB blocks."""
    padding = "".join(f"line {line} of message {number}\n" for line in range(lines))
    return (
        f"From: s@example.test\nSubject: mda {number}\nMessage-ID: <mda{number}@example.test>\n"
        f"\nbody {number}\n.a dot line\nFrom the start of a line\n{padding}end {number}\n"
    ).encode()


MESSAGES = [server_message(0, 3), server_message(1, 900), server_message(2, 12_000)]
MESSAGES += [server_message(3, 0)]


class MdaRun:
    """One world: a fresh HOME (fetch state) and a fresh MDA target folder."""

    def __init__(self, root: Path, account: Account, strace: str) -> None:
        self.root, self.strace = root, strace
        self.dest = root / "delivered"
        for sub in ("tmp", "new"):
            (self.dest / sub).mkdir(parents=True)
        home = root / "home"
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PYTHONDONTWRITEBYTECODE": "1",  # a .pyc write would shift the counts
            **account.env(),
        }
        mda = f'f=$(mktemp {self.dest}/tmp/m.XXXXXX) && cat > "$f" && mv "$f" {self.dest}/new/'
        self.args = ["fetch", "--to", f"mda:{mda}", *account.args()]

    def run(self, *strace_options: str) -> subprocess.CompletedProcess[bytes]:
        prefix = [self.strace, "-qq", *strace_options] if strace_options else []
        return subprocess.run(
            [*prefix, *MAILCLI, *self.args],
            env=self.env,
            capture_output=True,  # read to the end: waits for an MDA that outlived mailcli
            timeout=120,
            check=False,
        )

    def count_writes(self) -> int:
        log = self.root / "strace.log"
        done = self.run("-o", str(log), "-e", "trace=write")
        assert done.returncode == 0, done.stderr
        return sum(line.startswith("write(") for line in log.read_text().splitlines())

    def killed_at_write(self, n: int) -> subprocess.CompletedProcess[bytes]:
        inject = f"inject=write:signal=SIGKILL:when={n}"
        return self.run("-o", os.devnull, "-e", "trace=write", "-e", inject)

    def delivered(self) -> Counter[bytes]:
        return Counter(path.read_bytes() for path in (self.dest / "new").iterdir())

    def leftovers(self) -> list[Path]:
        """Named temporary files mailcli left in its state folder or HOME."""
        return [p for p in (self.root / "home").rglob("*") if p.name.startswith("tmp")]


@pytest.fixture
def strace() -> str:
    import shutil

    found = shutil.which("strace")
    if found is None:
        pytest.skip("strace is not installed")
    return found


def test_a_kill_at_any_write_never_delivers_part_of_a_message(
    pop3_account: Account, mailbox: Mailbox, tmp_path: Path, strace: str
) -> None:
    mailbox.drop(*MESSAGES)
    counting = MdaRun(tmp_path / "count", pop3_account, strace)
    writes = counting.count_writes()
    assert counting.delivered() == Counter(MESSAGES)  # the traced run itself is right
    assert writes > len(MESSAGES)
    failures = []
    for n in range(1, writes + 1):
        world = MdaRun(tmp_path / f"kill{n}", pop3_account, strace)
        killed = world.killed_at_write(n)
        if killed.returncode not in KILLED:
            failures.append(f"write #{n}: not killed, exit {killed.returncode}")
        after_kill = world.delivered()
        partial = [data[:50] + b"..." for data in after_kill if data not in MESSAGES]
        if partial or max(after_kill.values(), default=0) > 1:
            failures.append(f"write #{n}: after the kill {len(partial)} partial: {partial[:1]}")
        if world.leftovers():
            failures.append(f"write #{n}: left {world.leftovers()}")
        done = world.run()
        if done.returncode != 0:
            failures.append(f"write #{n}: the completing run exited {done.returncode}")
        got = world.delivered()
        counts = [got[data] for data in MESSAGES]
        if sum(got.values()) != sum(counts) or min(counts) < 1 or sum(counts) > len(MESSAGES) + 1:
            failures.append(f"write #{n}: after the completing run, delivered {counts} times")
    assert not failures, f"{len(failures)} of {writes} kill points:\n" + "\n".join(failures)


INSPECT_STDIN = """
import os, stat, sys
info = os.fstat(0)
others = []
for fd in range(3, 256):
    try:
        os.fstat(fd)
    except OSError:
        continue
    others.append(fd)
kind = "file" if stat.S_ISREG(info.st_mode) else "other"
report = f"{kind} links={info.st_nlink} mode={info.st_mode & 0o777:o} others={others}"
data = sys.stdin.buffer.read()
with open(sys.argv[1] + "/" + str(os.getpid()), "wb") as out:
    out.write(report.encode() + b"\\n" + data)
"""


def test_the_mda_reads_a_complete_unnamed_private_file_and_nothing_else(
    pop3_account: Account, mailbox: Mailbox, tmp_path: Path
) -> None:
    """stdin is a regular file (the whole message is there before the MDA starts), with
    no name left to clean up after a crash, readable only by the user; no other fd of
    mailcli's (its socket, its lock, its state) reaches the MDA."""
    import shlex
    import sys

    mailbox.drop(*MESSAGES[:2])
    script = tmp_path / "inspect.py"
    script.write_text(INSPECT_STDIN)
    out = tmp_path / "out"
    out.mkdir()
    world = MdaRun(tmp_path / "run", pop3_account, strace="")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {shlex.quote(str(out))}"
    world.args[2] = f"mda:{command}"
    done = world.run()
    assert done.returncode == 0, done.stderr
    seen = [path.read_bytes().split(b"\n", 1) for path in out.iterdir()]
    assert sorted(data for _, data in seen) == sorted(MESSAGES[:2])
    assert {report for report, _ in seen} == {b"file links=0 mode=600 others=[]"}
