"""Faults at the exact system calls of a real `fetch` process against Dovecot: a counting
run finds which occurrence of a system call touches a file (strace -yy), then the real
run gets strace's `inject=` at exactly that call. Shared by the disk-full and cleanup-error
tests; the harness only runs and inspects, it asserts nothing about mailcli's outcome."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from mailbox import mbox
from pathlib import Path

from tests.helpers import MAILCLI, Mailcli, message_ids

MESSAGES = 6
BATCH = "2"  # three batches: the state file is created by the first, appended by the others


@dataclass(frozen=True)
class Fault:
    """Fail the first `syscall` whose file (strace -yy) matches `target`."""

    syscall: str
    target: str
    error: str  # an errno name, or "retval=N" for a short write
    kind: str  # the destination: maildir or mbox

    @property
    def inject(self) -> str:
        how = self.error if self.error.startswith("retval=") else f"error={self.error}"
        return f"{self.syscall}:{how}"


def environment(fetch: Mailcli, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        **fetch.account.env(),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "MAILCLI_FETCH_BATCH": BATCH,
        "PYTHONDONTWRITEBYTECODE": "1",  # no .pyc writes: the same calls in every run
    }


def destination(kind: str, home: Path) -> Path:
    return home / ("Maildir" if kind == "maildir" else "inbox")


def fetch_argv(fetch: Mailcli, kind: str, home: Path, *extra: str) -> list[str]:
    where = destination(kind, home)
    return [*MAILCLI, "fetch", "--to", f"{kind}:{where}", *extra, *fetch.account.args()]


def occurrence(fetch: Mailcli, fault: Fault, scratch: Path, which: int = 0) -> int:
    """Which occurrence of the system call touches the target (the first, or the
    `which`-th of them: -1 the last), in a run that keeps the mail on the server (so the
    real run sees the same mailbox)."""
    scratch.mkdir()
    log = scratch / "strace.log"
    strace = ["strace", "-qq", "-yy", "-o", str(log), "-e", f"trace={fault.syscall}"]
    done = subprocess.run(
        [*strace, *fetch_argv(fetch, fault.kind, scratch, "--keep")],
        env=environment(fetch, scratch),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    calls = [line for line in log.read_text().splitlines() if line.startswith(fault.syscall + "(")]
    found = [number for number, line in enumerate(calls, 1) if re.search(fault.target, line)]
    assert found, f"no {fault.syscall} on {fault.target} in {calls[:50]}"
    return found[which]


def fetched(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A run of `argv` without a fault (the rerun after one)."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def injected(argv: list[str], env: dict[str, str], inject: str) -> subprocess.CompletedProcess[str]:
    strace = ["strace", "-qq", "-o", os.devnull, "-e", *f"inject={inject}".split()]
    return fetched([*strace, *argv], env)


def leftovers(home: Path) -> list[str]:
    """Temporary files of any kind left behind: `.part` temporaries, batch files, a
    dot-lock or its temporary, a Maildir's tmp/."""
    found = []
    for root, _, names in os.walk(home):
        for name in names:
            temporary = name.endswith((".part", ".mbox-batch"))
            lock = re.fullmatch(r"\.?inbox\.lock.*", name)
            in_tmp = os.path.basename(root) == "tmp" and "Maildir" in root
            if temporary or lock or in_tmp:
                found.append(os.path.join(root, name))
    return found


def delivered_ids(kind: str, home: Path) -> list[str]:
    where = destination(kind, home)
    if kind == "mbox":
        contents = [m.as_bytes() for m in mbox(where)] if where.exists() else []
    else:
        contents = [p.read_bytes() for sub in ("new", "cur") for p in (where / sub).iterdir()]
    return sorted(message_ids(contents).elements())


EXPECTED = sorted(f"<n{n}@example.test>" for n in range(MESSAGES))
# What a run that fetched every message exactly once leaves: final_state's answer.
FETCHED_ONCE: tuple[list[str], int, list[str]] = (EXPECTED, 0, [])


def final_state(fetch: Mailcli, kind: str, home: Path) -> tuple[list[str], int, list[str]]:
    """What the runs left: the Message-IDs delivered (sorted, a duplicate shows twice),
    the messages still on the server, the temporaries left behind."""
    return delivered_ids(kind, home), fetch.server_count(), leftovers(home)
