"""What a fetch into an mbox leaves when removing its own files fails (EIO), through
the real CLI against Dovecot: the journal of a batch already recorded, the dot-lock,
the dot-lock's temporary. The run ends 74 with one error line; the next run takes what
was left for what it is (a journal whose messages are all whole proves nothing after
them is ours; a dot-lock or its temporary holding a dead PID is stale, and goes), keeps
mail another program appended meanwhile, and completes exactly once."""

from __future__ import annotations

import mailbox as mailboxes
from pathlib import Path

import pytest

from tests.diskfull import (
    FETCHED_ONCE,
    MESSAGES,
    Fault,
    destination,
    environment,
    fetch_argv,
    fetched,
    final_state,
    injected,
    occurrence,
)
from tests.helpers import Mailcli, drop
from tests.servers import require
from tests.servers.fixtures import Mailbox

FOREIGN = b"From someone@example.test Mon Dec  7 06:00:00 2026\nSubject: local\n\nlocal mail\n\n"

# The last batch's journal, removed once its UIDs are recorded; the dot-lock, at the end.
UNLINKS = [
    Fault("unlink", r"mbox-\d+-\d+\.journal", "EIO", "mbox"),
    Fault("unlink", r"/inbox\.lock\"", "EIO", "mbox"),
    # The dot-lock's temporary, once linked: it holds our PID, dead by the next run.
    Fault("unlink", r"/\.inbox\.lock\.[0-9a-f]+\.part\"", "EIO", "mbox"),
]


@pytest.mark.parametrize("fault", UNLINKS, ids=["journal", "dot-lock", "dot-lock-temporary"])
def test_a_file_that_could_not_be_removed_is_74_and_the_next_run_completes_exactly_once(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, fault: Fault
) -> None:
    require("strace")
    drop(mailbox, range(MESSAGES))
    when = occurrence(mailcli, fault, tmp_path / "scratch", -1)
    home = tmp_path / "home"
    env = environment(mailcli, home)
    argv = fetch_argv(mailcli, "mbox", home, "--delete")
    failed = injected(argv, env, f"{fault.inject}:when={when}")
    assert failed.returncode == 74, failed.stderr
    lines = failed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailcli: error: "), lines
    # Another program delivers before the next run: after the batch the journal names.
    with destination("mbox", home).open("ab") as inbox:
        inbox.write(FOREIGN)
    again = fetched(argv, env)
    assert again.returncode == 0, again.stderr
    assert final_state(mailcli, "mbox", home) == FETCHED_ONCE
    local = [m for m in mailboxes.mbox(destination("mbox", home)) if m["Subject"] == "local"]
    assert len(local) == 1
    assert not list(home.rglob("*.journal"))
