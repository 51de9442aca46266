"""`mailcli fetch` against the throwaway Dovecot: exactly once, whatever happens."""

from __future__ import annotations

import os
import subprocess
import time
from mailbox import mbox
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Mailcli, drop, message_ids
from tests.servers.accounts import Account
from tests.servers.accounts import numbered_message as message
from tests.servers.fixtures import Mailbox
from tests.servers.pop3scripts import no_uidl_server, pop3_server
from tests.servers.scripted import ScriptedServer, hang_up


def delivered(maildir: Path) -> list[bytes]:
    return [
        path.read_bytes() for sub in ("new", "cur") for path in sorted((maildir / sub).iterdir())
    ]


@pytest.fixture
def maildir(isolated_environment: Path) -> Path:
    """Where fetch delivers by default."""
    return isolated_environment / "Maildir"


def test_300_messages_byte_exact_then_only_new_ones(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path
) -> None:
    drop(mailbox, range(300))
    summary = mailcli.json("fetch")
    assert (summary["fetched"], summary["deleted"], summary["skipped"]) == (300, 0, 0)
    stored = {message(n) for n in range(300)}
    assert set(delivered(maildir)) == stored  # LF line ends, byte for byte
    assert all(
        (maildir / "new" / p).stat().st_mode & 0o777 == 0o600 for p in os.listdir(maildir / "new")
    )
    assert mailcli.json("fetch")["fetched"] == 0  # a rerun fetches nothing
    drop(mailbox, range(300, 305))
    assert mailcli.json("fetch")["fetched"] == 5
    assert len(delivered(maildir)) == 305
    assert mailcli.server_count() == 305  # keep is the default


def test_delete_empties_the_server_including_earlier_fetches(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path
) -> None:
    drop(mailbox, range(20))
    assert mailcli.json("fetch")["fetched"] == 20
    drop(mailbox, range(20, 25))
    summary = mailcli.json("fetch", "--delete")
    assert (summary["fetched"], summary["deleted"]) == (5, 25)
    assert mailcli.server_count() == 0
    assert len(delivered(maildir)) == 25


def test_no_new_mail_is_success_and_silent_when_piped(mailcli: Mailcli, maildir: Path) -> None:
    result = mailcli("fetch")
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert (maildir / "new").is_dir()  # created when missing


def test_mbox_destination_with_mboxrd_quoting(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    drop(mailbox, range(3))
    target = tmp_path / "mail" / "inbox.mbox"
    assert mailcli.json("fetch", "--to", f"mbox:{target}")["fetched"] == 3
    box = mbox(target)
    subjects = sorted(str(m["Subject"]) for m in box)
    assert subjects == ["n0", "n1", "n2"]
    assert b"\n>From the start of a line\n" in target.read_bytes()
    assert all(str(m.get_payload()).startswith("body of") for m in box)
    assert not list(target.parent.glob("*.lock"))  # the dot-lock is released


def test_mda_destination_and_a_failing_mda(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    drop(mailbox, range(5))
    out = tmp_path / "mda"
    out.mkdir()
    counter = tmp_path / "count"
    counter.write_text("0")
    mda = (
        f"n=$(cat {counter}); echo $((n+1)) > {counter}; "
        f"if [ $n -eq 2 ]; then exit 9; fi; cat > {out}/msg.$n"
    )
    failed = mailcli("fetch", "--to", f"mda:{mda}", "--delete")
    assert failed.code == 73
    assert "MDA exited with status 9" in failed.stderr
    assert sorted(os.listdir(out)) == ["msg.0", "msg.1"]
    assert mailcli.server_count() == 5  # no QUIT after a failure: nothing deleted yet
    done = mailcli.json("fetch", "--to", f"mda:{mda}", "--delete")
    assert done["fetched"] == 3 and done["deleted"] == 5
    delivered = [(out / name).read_bytes() for name in os.listdir(out)]
    assert sorted(message_ids(delivered).values()) == [1] * 5
    assert mailcli.server_count() == 0


def test_max_size_skips_and_a_higher_limit_fetches_later(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path
) -> None:
    drop(mailbox, range(3))
    drop(mailbox, range(3, 4), size=50_000)
    summary = mailcli.json("fetch", "--max-size", "10000")
    assert (summary["fetched"], summary["skipped"]) == (3, 1)
    assert summary["skipped_messages"][0]["size"] > 50_000
    assert mailcli.json("fetch")["fetched"] == 1
    assert len(delivered(maildir)) == 4


def test_limit_and_dry_run(mailcli: Mailcli, mailbox: Mailbox, maildir: Path) -> None:
    drop(mailbox, range(10))
    assert mailcli.json("fetch", "--dry-run")["would_fetch"] == 10
    assert not (maildir / "new").exists() or not os.listdir(maildir / "new")
    assert mailcli.json("fetch", "--limit", "4")["fetched"] == 4
    assert mailcli.json("fetch")["fetched"] == 6


def test_a_second_concurrent_fetch_exits_75(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    drop(mailbox, range(2))
    started = tmp_path / "started"
    slow_mda = f"touch {started}; sleep 3; cat > /dev/null"  # holds the run (and its lock)
    env = {**os.environ, **mailcli.account.env()}
    first = subprocess.Popen(
        [*MAILCLI, "fetch", "--to", f"mda:{slow_mda}", *mailcli.account.args()],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(
        [*MAILCLI, "fetch", *mailcli.account.args()], env=env, capture_output=True, check=False
    )
    assert second.returncode == 75
    assert f"another fetch for this account is running (pid {first.pid})".encode() in (
        second.stderr
    )
    assert first.wait(timeout=60) == 0
    assert mailcli.json("fetch")["fetched"] == 0  # the first one fetched both


def test_connection_dropped_mid_retr_leaves_no_file_and_sends_no_dele(
    tmp_path: Path, isolated_environment: Path
) -> None:
    dropping = pop3_server(
        ["USER", "UIDL"],
        {
            "LIST": ("+OK", "1 40", "2 40", "."),
            "UIDL": ("+OK", "1 a", "2 b", "."),
            "RETR 2": hang_up("+OK", "Subject: half", "", "first line"),
            "RETR": ("+OK", "Subject: whole", "", "all of it", "."),
        },
    )
    with ScriptedServer(dropping) as server:
        result = Mailcli(Account.scripted(server))("fetch", "--delete")
    assert result.code == 75
    maildir = isolated_environment / "Maildir"
    assert [p.read_bytes() for p in (maildir / "new").iterdir()] == [
        b"Subject: whole\n\nall of it\n"
    ]
    assert os.listdir(maildir / "tmp") == []
    assert not any(line.upper().startswith("DELE") for line in server.received)


def test_a_server_without_uidl_gets_everything_each_time_with_a_warning(
    isolated_environment: Path,
) -> None:
    with ScriptedServer(no_uidl_server()) as server:
        first = Mailcli(Account.scripted(server))("fetch", "-v")
        second = Mailcli(Account.scripted(server))("fetch", "-v")
    for result in (first, second):
        assert result.code == 0, result.stderr
        assert "the server has no UIDL" in result.stderr
        assert "fetched 1 message(s)" in result.stderr
    assert len(os.listdir(isolated_environment / "Maildir" / "new")) == 2


def test_keep_mode_into_mbox_never_refetches_on_later_runs(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    """mbox has no file names to recognise messages by: the state alone must remember."""
    drop(mailbox, range(3))
    target = tmp_path / "inbox.mbox"
    for _ in range(4):
        assert mailcli("fetch", "--to", f"mbox:{target}").code == 0
    drop(mailbox, range(3, 4))
    assert mailcli.json("fetch", "--to", f"mbox:{target}")["fetched"] == 1
    assert len(mbox(target)) == 4
