"""Symlinks planted at names mailcli writes: the file they point at
is never written; the command works, or fails cleanly (never 70).

The tests run mailcli in this process, so its PID, which the old temporary names were
made of, is known here, as it is to an attacker who watches `ps`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailcli.errors import CantCreateError
from mailcli.fetch.mboxlock import MboxLock
from mailcli.fsutil import FileLock
from tests.helpers import Mailcli, run_cli
from tests.servers.fixtures import Mailbox

VICTIM_TEXT = b"precious, not mailcli's\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_bytes(VICTIM_TEXT)
    return path


def plant(link: Path, victim: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim)
    return link


def test_retr_output_ignores_links_at_its_temporary_and_final_names(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, victim: Path
) -> None:
    mailbox.drop(b"Subject: hi\n\nbody\n")
    out = tmp_path / "out" / "message.eml"
    plant(out.with_name(f".{out.name}.{os.getpid()}.part"), victim)  # the old temp name
    plant(out, victim)  # the final name: rename replaces the link itself
    result = mailcli("retr", "1", "-o", str(out))
    assert result.code == 0, result.stderr
    assert victim.read_bytes() == VICTIM_TEXT
    assert not out.is_symlink() and b"Subject: hi" in out.read_bytes()


def test_account_add_ignores_a_link_at_the_old_temporary_name(
    config_file: Path, victim: Path
) -> None:
    plant(config_file.with_name(f".{config_file.name}.{os.getpid()}.part"), victim)
    result = run_cli(["account", "add", "home", "--smtp-host", "smtp.home.example"])
    assert result.code == 0, result.stderr
    assert victim.read_bytes() == VICTIM_TEXT
    assert "smtp.home.example" in config_file.read_text()


def test_mbox_dotlock_ignores_a_link_at_the_old_temporary_name(
    tmp_path: Path, victim: Path
) -> None:
    mbox = tmp_path / "mail" / "inbox"
    mbox.parent.mkdir()
    mbox.write_bytes(b"")
    plant(mbox.with_name(f"{mbox.name}.lock.{os.getpid()}"), victim)
    lock = MboxLock(mbox)
    try:
        assert mbox.with_name("inbox.lock").read_text().strip() == str(os.getpid())
    finally:
        lock.release()
    assert victim.read_bytes() == VICTIM_TEXT
    assert not mbox.with_name("inbox.lock").exists()


def test_a_linked_lock_file_is_refused_cleanly(tmp_path: Path, victim: Path) -> None:
    lock = plant(tmp_path / "state" / ".lock", victim)
    with pytest.raises(CantCreateError, match="lock"), FileLock(lock, "queue run"):
        pass
    assert victim.read_bytes() == VICTIM_TEXT


def test_queue_run_with_a_linked_lock_file_is_73(isolated_environment: Path, victim: Path) -> None:
    queue = isolated_environment / ".local" / "state" / "mailcli" / "queue"
    plant(queue / ".lock", victim)
    result = run_cli(["queue", "run"])
    assert result.code == 73, result.stderr
    assert str(queue / ".lock") in result.stderr
    assert victim.read_bytes() == VICTIM_TEXT
