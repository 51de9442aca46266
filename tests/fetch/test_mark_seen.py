"""`fetch --mark-seen` on the real Dovecot: every message on the server is recorded as
delivered without being downloaded (moving from another fetcher, or starting fresh),
so the next fetch gets only newer mail; `--dry-run` counts and records nothing; it
never deletes, whatever `--delete` or the account says."""

from __future__ import annotations

import re
from pathlib import Path

from tests.fetchcases import state_file
from tests.helpers import Mailcli, drop
from tests.servers.accounts import Account
from tests.servers.accounts import numbered_message as message
from tests.servers.fixtures import Mailbox
from tests.servers.pop3scripts import no_uidl_server
from tests.servers.scripted import ScriptedServer


def delivered(maildir: Path) -> set[bytes]:
    if not maildir.exists():
        return set()
    return {p.read_bytes() for sub in ("new", "cur") for p in (maildir / sub).iterdir()}


def test_mark_seen_then_a_fetch_gets_only_newer_mail(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    maildir = isolated_environment / "Maildir"
    drop(mailbox, range(4))
    planned = mailcli("fetch", "--mark-seen", "--dry-run")
    assert planned.code == 0, planned.stderr
    assert "would mark 4 message(s) as seen" in planned.stderr
    assert not (isolated_environment / ".local" / "state" / "mailcli").exists()
    done = mailcli("fetch", "--mark-seen", "--trace")
    assert done.code == 0, done.stderr
    assert "marked 4 message(s) as seen" in done.stderr
    assert not re.search(r"\b(RETR|TOP|DELE) ", done.stderr)  # nothing downloaded or deleted
    assert delivered(maildir) == set()
    drop(mailbox, range(4, 6))
    summary = mailcli.json("fetch")
    assert summary["fetched"] == 2
    assert delivered(maildir) == {message(4), message(5)}
    assert mailcli.server_count() == 6


def test_mark_seen_never_deletes_and_says_so(mailcli: Mailcli, mailbox: Mailbox) -> None:
    drop(mailbox, range(3))
    assert mailcli.json("fetch", "--mark-seen")["marked"] == 3
    drop(mailbox, range(3, 5))
    done = mailcli("fetch", "--mark-seen", "--delete", "--delete-larger-than", "1", "--json")
    assert done.code == 0, done.stderr
    assert "never deletes" in done.stderr
    assert '"marked": 2' in done.stdout
    assert mailcli.server_count() == 5
    assert mailcli.json("fetch")["fetched"] == 0


def test_mark_seen_records_each_uid_with_its_size_and_time(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    drop(mailbox, range(2))
    mailcli.json("fetch", "--mark-seen")
    state = state_file(isolated_environment).read_text()
    assert re.search(r"#[0-9]+@[0-9]+ ", state)  # UID#SIZE@EPOCH


def test_mark_seen_without_uidl_is_69_and_touches_nothing(isolated_environment: Path) -> None:
    with ScriptedServer(no_uidl_server()) as server:
        result = Mailcli(Account.scripted(server))("fetch", "--mark-seen")
    assert result.code == 69, result.stderr
    assert result.stderr.startswith("mailcli: error: the server has no UIDL")
    assert not any(line.upper().startswith(("RETR", "DELE")) for line in server.received)
    assert delivered(isolated_environment / "Maildir") == set()
