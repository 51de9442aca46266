"""Retention on the real Dovecot: `--delete-after DAYS` (key `delete_after`) deletes a
message once it was stored at least DAYS ago, counted from the time the fetch state
records for its UID (the tests age those records, no sleeping); `--delete-larger-than
BYTES` (key `delete_larger_than`) deletes larger new mail on the server without
downloading it, with `--keep` too (mpop's killsize), reported per message and in
`--dry-run`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fetchcases import DAY, age_records, state_file
from tests.helpers import Mailcli, drop
from tests.servers.accounts import numbered_message as message
from tests.servers.fixtures import Mailbox


def delivered(maildir: Path) -> set[bytes]:
    return {p.read_bytes() for sub in ("new", "cur") for p in (maildir / sub).iterdir()}


def write_account(home: Path, table: str) -> None:
    """The default account `box` whose fetch table holds `table` (connection options
    come from the command line)."""
    config = home / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'default_account = "box"\n[accounts.box]\n[accounts.box.fetch]\n{table}\n')


def test_delete_after_deletes_only_what_was_stored_days_ago(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    drop(mailbox, range(3))
    assert mailcli.json("fetch")["fetched"] == 3
    age_records(isolated_environment, 8)
    drop(mailbox, range(3, 5))
    summary = mailcli.json("fetch", "--delete-after", "9")
    assert (summary["fetched"], summary["deleted"]) == (2, 0)
    assert mailcli.server_count() == 5
    planned = mailcli("fetch", "--delete-after", "7", "--dry-run")
    assert "would fetch 0 message(s)" in planned.stderr, planned.stderr
    assert "would delete 3 fetched earlier" in planned.stderr
    assert mailcli.json("fetch", "--delete-after", "7", "--dry-run")["would_delete"] == 3
    assert mailcli.server_count() == 5
    summary = mailcli.json("fetch", "--delete-after", "7")
    assert (summary["fetched"], summary["deleted"]) == (0, 3)  # only the 8 days old ones
    assert mailcli.server_count() == 2
    assert delivered(isolated_environment / "Maildir") == {message(n) for n in range(5)}
    age_records(isolated_environment, 7)
    assert mailcli.json("fetch", "--delete-after", "7")["deleted"] == 2
    assert mailcli.server_count() == 0


def test_the_key_keeps_mail_for_its_days_and_keep_overrides_it(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    write_account(isolated_environment, "delete_after = 2\ndelete = true")
    drop(mailbox, range(2))
    assert mailcli.json("fetch")["deleted"] == 0  # stored just now: kept 2 days
    age_records(isolated_environment, 3)
    assert mailcli.json("fetch", "--keep")["deleted"] == 0
    assert mailcli.server_count() == 2
    assert mailcli.json("fetch")["deleted"] == 2
    assert mailcli.server_count() == 0


def test_delete_after_0_is_delete(mailcli: Mailcli, mailbox: Mailbox) -> None:
    drop(mailbox, range(3))
    summary = mailcli.json("fetch", "--delete-after", "0")
    assert (summary["fetched"], summary["deleted"]) == (3, 3)
    assert mailcli.server_count() == 0


def test_a_version_3_state_is_upgraded_and_its_mail_kept_days_from_then(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    """UIDs recorded before times were: stamped at the upgrade, never deleted at once."""
    drop(mailbox, range(3))
    assert mailcli.json("fetch")["fetched"] == 3
    path = state_file(isolated_environment)
    v3 = re.sub(r"@[0-9]+", "", path.read_text()).replace("state v4 ", "state v3 ", 1)
    path.write_text(v3)
    summary = mailcli.json("fetch", "--delete-after", "1")
    assert (summary["fetched"], summary["deleted"]) == (0, 0)
    assert path.read_text().startswith("# mailcli fetch state v4 ")
    age_records(isolated_environment, 1)
    assert mailcli.json("fetch", "--delete-after", "1")["deleted"] == 3


def test_larger_mail_is_deleted_unread_also_with_keep(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    mailbox.drop(message(0), message(1, size=6000), message(2))
    planned = mailcli("fetch", "--keep", "--delete-larger-than", "3000", "--dry-run")
    assert planned.code == 0, planned.stderr
    assert "would delete message 2 (" in planned.stderr and "without downloading" in planned.stderr
    assert mailcli.server_count() == 3  # a dry run deletes nothing
    done = mailcli("fetch", "--keep", "--delete-larger-than", "3000", "--json", "--trace")
    assert done.code == 0, done.stderr
    assert re.search(r"\bDELE 2\b", done.stderr) and not re.search(r"\bRETR 2\b", done.stderr)
    assert re.search(r"\bRETR 3\b", done.stderr)
    assert "deleted message 2 (" in done.stderr
    assert mailcli.server_count() == 2
    assert delivered(isolated_environment / "Maildir") == {message(0), message(2)}
    report = done.stdout[done.stdout.index("{") :]
    assert '"deleted_unread": [{"number": 2' in report.replace("\n", "").replace("  ", "")


def test_the_key_deletes_larger_mail_and_json_lists_it(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    write_account(isolated_environment, "delete_larger_than = 3000")
    mailbox.drop(message(0, size=6000), message(1))
    summary = mailcli.json("fetch")
    assert (summary["fetched"], summary["deleted"]) == (1, 1)
    assert [m["number"] for m in summary["deleted_unread"]] == [1]
    assert mailcli.server_count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--delete-after", "-1"],
        ["--delete-after", "seven"],
        ["--delete-after", "1.5"],
        ["--delete-larger-than", "-5"],
        ["--delete-larger-than", "1k"],
    ],
)
def test_a_bad_count_option_is_64(mailcli: Mailcli, args: list[str]) -> None:
    result = mailcli("fetch", *args)
    assert result.code == 64, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "table",
    [
        "delete_after = -1",
        'delete_after = "7"',
        "delete_after = 1.5",
        "delete_larger_than = true",
        "delete_larger_than = -3",
    ],
)
def test_a_bad_count_key_is_78_naming_it(
    mailcli: Mailcli, isolated_environment: Path, table: str
) -> None:
    write_account(isolated_environment, table)
    result = mailcli("fetch")
    assert result.code == 78, result.stderr
    assert f"accounts.box.fetch.{table.split()[0]}" in result.stderr
    assert result.stderr.startswith("mailcli: error:") and len(result.stderr.splitlines()) <= 2


def test_delete_with_delete_after_is_64(mailcli: Mailcli) -> None:
    assert mailcli("fetch", "--delete", "--delete-after", "3").code == 64


def test_nothing_is_deleted_that_was_stored_less_than_days_ago(
    mailcli: Mailcli, mailbox: Mailbox, isolated_environment: Path
) -> None:
    drop(mailbox, range(2))
    mailcli.json("fetch")
    age_records(isolated_environment, 3 - 60 / DAY)  # a minute short of 3 days
    assert mailcli.json("fetch", "--delete-after", "3")["deleted"] == 0
    assert mailcli.server_count() == 2
