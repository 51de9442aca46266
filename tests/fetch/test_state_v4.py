"""Version 4 of the fetch state: each UID with the time its message was stored (what
`delete_after` counts from). Version 3 and 2 files are still read and rewritten as
version 4 atomically, their UIDs stamped with the time of the upgrade (never "long
ago": nothing is deleted at once because of an upgrade); compaction keeps the times."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcli.errors import ConfigError
from mailcli.fetch.mailbox import Mailbox, escape
from mailcli.fetch.state import UidState

MAILBOX = Mailbox("acct", "me@example.test", "mail.example")
V4 = "# mailcli fetch state v4 "
V3 = "# mailcli fetch state v3 "
V2 = "# mailcli fetch state v2 "
DAY = 86400


def test_a_recorded_batch_carries_the_time_it_was_stored(tmp_path: Path) -> None:
    state = UidState(tmp_path, MAILBOX)
    state.load()
    before = int(time.time())
    state.record([("a", 10), ("b", None)])
    after = int(time.time())
    assert state.path.read_text().startswith(V4 + MAILBOX.identity + "\n")
    again = UidState(tmp_path, MAILBOX)
    assert again.load() == {"a": 10, "b": None}
    assert all(before <= again.stored_at[uid] <= after for uid in ("a", "b"))


@pytest.mark.parametrize(("header", "line"), [(V3, "a#10 b@x#20"), (V2, "a b@x")])
def test_an_older_file_is_rewritten_as_version_4_stamped_with_the_upgrade_time(
    tmp_path: Path, header: str, line: str
) -> None:
    state = UidState(tmp_path, MAILBOX)
    state.path.write_text(f"{header}{MAILBOX.identity}\n# destination mbox:/m\n{line}\ntorn")
    before = int(time.time())
    sizes = state.load()
    assert sizes.keys() == {"a", "b@x"}
    assert state.previous_destination == "mbox:/m"
    text = state.path.read_text()
    assert text.startswith(V4 + MAILBOX.identity + "\n")  # rewritten, atomically
    assert "b%40x" in text and "torn" not in text  # "@" is escaped in version 4
    again = UidState(tmp_path, MAILBOX)
    assert again.load() == sizes
    assert all(again.stored_at[uid] >= before for uid in sizes)  # never "long ago"


def test_a_dry_run_reads_a_version_3_file_without_rewriting_it(tmp_path: Path) -> None:
    state = UidState(tmp_path, MAILBOX, read_only=True)
    state.path.write_text(f"{V3}{MAILBOX.identity}\na#5\n")
    assert state.load() == {"a": 5}
    assert state.stored_at["a"] >= int(time.time()) - 5
    assert state.path.read_text().startswith(V3)


def test_compaction_keeps_each_uids_time(tmp_path: Path) -> None:
    old = int(time.time()) - 9 * DAY
    state = UidState(tmp_path, MAILBOX)
    state.path.write_text(f"{V4}{MAILBOX.identity}\na#1@{old} b#2@{old + 1}\nc#3@{old + 2}\n")
    assert state.load() == {"a": 1, "b": 2, "c": 3}
    state.compact({"a": 1, "c": 3})
    again = UidState(tmp_path, MAILBOX)
    assert again.load() == {"a": 1, "c": 3}
    assert again.stored_at == {"a": old, "c": old + 2}


@pytest.mark.parametrize("body", ["a@\n", "a@x\n", "a#1@\n", "a@1#2\n", "a@@1\n", "a@-1\n"])
def test_a_time_the_writer_never_writes_is_damage(tmp_path: Path, body: str) -> None:
    state = UidState(tmp_path, MAILBOX)
    state.path.write_text(state.header + "\n" + body)
    with pytest.raises(ConfigError) as caught:
        state.load()
    assert caught.value.exit_status == 78


@settings(max_examples=200, deadline=None)
@given(
    uids=st.dictionaries(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
        st.tuples(st.none() | st.integers(0, 10**9), st.integers(0, 2**40)),
        min_size=1,
        max_size=6,
    )
)
def test_any_uid_size_and_time_read_back(
    tmp_path_factory: pytest.TempPathFactory, uids: dict[str, tuple[int | None, int]]
) -> None:
    state = UidState(tmp_path_factory.mktemp("state"), MAILBOX)
    tokens = []
    for uid, (size, stored) in uids.items():
        sized = escape(uid).replace("@", "%40") + ("" if size is None else f"#{size}")
        tokens.append(f"{sized}@{stored}")
    state.path.write_text(f"{V4}{MAILBOX.identity}\n{' '.join(tokens)}\n")
    assert state.load() == {uid: size for uid, (size, _) in uids.items()}
    assert state.stored_at == {uid: stored for uid, (_, stored) in uids.items()}
    state.compact(state.load())
    again = UidState(state.directory, MAILBOX)
    assert again.load() == {uid: size for uid, (size, _) in uids.items()}
    assert again.stored_at == {uid: stored for uid, (_, stored) in uids.items()}
