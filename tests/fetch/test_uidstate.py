"""The fetch state file: any UID survives writer -> reader
byte-exactly, distinct UIDs never collide, and version 1 files are merged in
crash-safely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcli.errors import ConfigError
from mailcli.fetch.destination import message_key
from mailcli.fetch.mailbox import (
    Mailbox,
    escape,
    unescape,
    v1_state_name,
)
from mailcli.fetch.state import UidState
from mailcli.pop3.commands import _pair, uid_bytes, wire_text

# What a UIDL line can carry as a UID (`pop3.commands._pair`): the bytes after the first run
# of spaces up to the line end: non-empty, no LF (it ends the line), not starting with a
# space (part of the separator), not ending with CR (stripped with the line end).
UID_BYTES = (
    st.binary(min_size=1, max_size=40)
    .filter(lambda b: b"\n" not in b)
    .map(lambda b: b.lstrip(b" ").rstrip(b"\r"))
    .filter(bool)
)
UID = UID_BYTES.map(wire_text)
MAILBOX = Mailbox("acct", "me", "mail.example")


@settings(max_examples=300)
@given(data=UID_BYTES)
def test_a_uidl_line_yields_exactly_the_uid_bytes(data: bytes) -> None:
    for separator in (b" ", b"   "):
        number, uid = _pair(wire_text(b"7" + separator + data + b"\r\n"), "UIDL")
        assert (number, uid_bytes(uid)) == (7, data)


@settings(max_examples=300)
@given(first=UID, second=UID)
def test_distinct_uids_never_collide(first: str, second: str) -> None:
    if uid_bytes(first) == uid_bytes(second):
        assert first == second and escape(first) == escape(second)
        return
    assert first != second
    assert escape(first) != escape(second)
    assert message_key(MAILBOX.identity, first) != message_key(MAILBOX.identity, second)


@settings(max_examples=300)
@given(uid=UID)
def test_escape_is_printable_ascii_without_spaces_and_reversible(uid: str) -> None:
    token = escape(uid)
    assert token.isascii() and token.isprintable() and " " not in token
    assert not token.startswith("#")
    assert unescape(token) == uid


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.lists(UID, min_size=1, max_size=5), min_size=1, max_size=4))
def test_every_uid_written_reads_back(tmp_path_factory: pytest.TempPathFactory, batches) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("state")
    state = UidState(directory, MAILBOX, destination="maildir:/x y\nz")
    state.load()
    for number, batch in enumerate(batches):
        state.record((uid, number if number % 2 else None) for uid in batch)
    everything = {
        uid: number if number % 2 else None for number, b in enumerate(batches) for uid in b
    }
    assert UidState(directory, MAILBOX).load() == everything
    state.compact(everything)
    reread = UidState(directory, MAILBOX)
    assert reread.load() == everything
    assert reread.previous_destination == "maildir:/x y\nz"


def write_v1(
    directory: Path, account: str | None, user: str, host: str, port: int, uids: str
) -> Path:
    name = v1_state_name(account, user, host, port)
    path = directory / f"{name}.uids"
    path.write_text(f"# mailcli fetch state v1 {name}\n{uids}\n")
    return path


def test_v1_files_of_the_same_mailbox_are_merged_then_removed(tmp_path: Path) -> None:
    mine = [
        write_v1(tmp_path, "acct", "me", "127.0.0.1", 110, "a b"),
        write_v1(tmp_path, "acct", "me", "localhost", 995, "c"),
        write_v1(tmp_path, "acct", "me", "::1", 995, "d%"),
    ]
    other = write_v1(tmp_path, "acct", "you", "127.0.0.1", 110, "x")
    elsewhere = write_v1(tmp_path, "acct", "me", "mail.example", 110, "y")
    state = UidState(tmp_path, Mailbox("acct", "me", "localhost."))
    assert state.load().keys() == {"a", "b", "c", "d%"}
    assert not any(path.exists() for path in mine)
    assert other.exists() and elsewhere.exists()
    assert {p.stem for p in mine} <= state.legacy_names  # old Maildir keys still known
    assert UidState(tmp_path, Mailbox("acct", "me", "127.0.0.1")).load().keys() == {
        "a",
        "b",
        "c",
        "d%",
    }


def test_a_crash_between_writing_the_v2_file_and_removing_v1_loses_nothing(
    tmp_path: Path,
) -> None:
    old = write_v1(tmp_path, None, "me", "127.0.0.1", 110, "a b")
    state = UidState(tmp_path, Mailbox(None, "me", "localhost"))
    assert state.load() == {"a": None, "b": None}
    state.record([("c", 10)])
    write_v1(tmp_path, None, "me", "127.0.0.1", 110, "a b")  # as if unlink never happened
    loaded = UidState(tmp_path, Mailbox(None, "me", "localhost")).load()
    assert loaded == {"a": None, "b": None, "c": 10}
    assert not old.exists()


def test_a_dry_run_merges_v1_files_in_memory_only(tmp_path: Path) -> None:
    old = write_v1(tmp_path, None, "me", "127.0.0.1", 110, "a")
    state = UidState(tmp_path, Mailbox(None, "me", "localhost"), read_only=True)
    assert state.load() == {"a": None}
    assert old.exists() and not state.path.exists()


@pytest.mark.parametrize(
    "body",
    ["# destination a b\n", "a%zz\n", "a\tb\n", "#x\n", "a  b\n", "\xe9\n", "a#\n", "a#x\n"],
)
def test_what_the_writer_never_writes_is_damage(tmp_path: Path, body: str) -> None:
    state = UidState(tmp_path, MAILBOX)
    state.path.write_text(state.header + "\n" + body)
    with pytest.raises(ConfigError) as caught:
        state.load()
    assert caught.value.exit_status == 78


V2_HEADER = "# mailcli fetch state v2 "


def test_a_version_2_file_is_rewritten_as_version_3_with_sizes_unknown(tmp_path: Path) -> None:
    state = UidState(tmp_path, MAILBOX)
    v2 = f"{V2_HEADER}{MAILBOX.identity}\n# destination mbox:/m\na b%20c\nd\ntorn"
    state.path.write_text(v2)
    assert state.load() == {"a": None, "b c": None, "d": None}  # the torn line is no record
    assert state.previous_destination == "mbox:/m"
    assert state.path.read_text().startswith(state.header + "\n")  # v3, atomically
    state.record([("e", 7)])
    assert UidState(tmp_path, MAILBOX).load() == {"a": None, "b c": None, "d": None, "e": 7}


def test_a_dry_run_reads_a_version_2_file_without_rewriting_it(tmp_path: Path) -> None:
    state = UidState(tmp_path, MAILBOX, read_only=True)
    state.path.write_text(f"{V2_HEADER}{MAILBOX.identity}\na\n")
    assert state.load() == {"a": None}
    assert state.path.read_text().startswith(V2_HEADER)


def test_a_later_record_of_a_uid_replaces_its_size(tmp_path: Path) -> None:
    state = UidState(tmp_path, MAILBOX)
    state.load()
    state.record([("a", 100), ("b", 5)])
    state.record([("a", 200)])
    assert UidState(tmp_path, MAILBOX).load() == {"a": 200, "b": 5}


def test_a_torn_last_line_is_never_a_record_nor_glued_to_the_next(tmp_path: Path) -> None:
    """A short write on a full disk left "uid-9" without its newline: it is not a
    record, and the next append must not turn it into "uid-9uid-10"."""
    state = UidState(tmp_path, MAILBOX)
    state.load()
    state.record([("uid-1", 1)])
    with state.path.open("ab") as file:
        file.write(b"uid-9#9")
    assert UidState(tmp_path, MAILBOX).load() == {"uid-1": 1}
    state.record([("uid-10", 10)])
    assert UidState(tmp_path, MAILBOX).load() == {"uid-1": 1, "uid-10": 10}
    assert re.search(rb"\nuid-10#10@[0-9]+\n\Z", state.path.read_bytes())
