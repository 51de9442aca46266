"""A hostile POP3 server across sessions: `fetch` run after `fetch` against a
mailbox that stalls, hangs up at any octet of any reply, sends bare LF and bare CR, lies
in LIST, changes, repeats and garbles UIDs, and deletes only at a successful QUIT.

What fetch promises here, checked after every run:
- the exit status is 0, 75 or 76 (never 70); a session without a fault exits 0;
- every file in the destination is, byte for byte (CRLF -> LF), a message the server
  sent: none truncated, none padded; nothing stays in tmp/;
- a message whose identities are its own (no other message ever presented one of its
  (UID, LIST size) pairs) is in the destination before the server deletes it, and at
  most once per change of its UID or size: the fetch state knows a mailbox's messages
  by UID and size, so a message presented under a UID or size it did not have before is
  new to it (stable UIDs and sizes: exactly once);
- a UID the server lists for two messages in one session is never taken as "already
  delivered" for either of them: --delete deletes neither unless this run fetched it;
- a UID the server reuses across sessions (a new message under the UID of one it deleted,
  which RFC 1939 forbids) is a new message when its size differs: fetched before it is
  deleted. Under the same UID and size, nothing can tell the two apart: such messages are
  promised nothing but the first two points.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.fickle import FickleMailbox, Message, Session
from tests.servers.scripted import ScriptedServer

TIMEOUT = "1"
ALLOWED_CODES = {0, 75, 76}


@dataclass
class Client:
    """`mailcli fetch` in this process, into a Maildir under `root`, state beside it."""

    server: ScriptedServer
    root: Path

    @property
    def maildir(self) -> Path:
        return self.root / "Maildir"

    def fetch(self, *options: str) -> Result:
        env = {
            "MAILCLI_FETCH_BATCH": "2",  # several batches in a mailbox of a few messages
            "XDG_STATE_HOME": str(self.root / "state"),
        }
        alice = Mailcli(Account.scripted(self.server, "alice", "Fickle-Secret-1"))
        return alice(
            "fetch", "--to", f"maildir:{self.maildir}", *options, "--timeout", TIMEOUT, env=env
        )

    def delivered(self) -> list[bytes]:
        return sorted(
            (folder / name).read_bytes()
            for folder in (self.maildir / "new", self.maildir / "cur")
            if folder.is_dir()
            for name in os.listdir(folder)
        )

    def in_tmp(self) -> list[str]:
        tmp = self.maildir / "tmp"
        return os.listdir(tmp) if tmp.is_dir() else []


def as_stored(message: Message) -> bytes:
    return message.body.replace(b"\r\n", b"\n")


BARE_LF_DOT = (
    b"Message-ID: <bare-lf@example.test>\r\nSubject: a bare LF dot line\r\n\r\n"
    b"line\n.\nmore\r\n..stuffed\r\nend\r\n"
)


def test_a_bare_lf_dot_line_is_fetched_whole_and_deleted_only_whole(tmp_path: Path) -> None:
    """Once "\\n.\\n" ended the message; the cut copy was recorded and
    the --delete run removed the original from the server."""
    message = Message(1, BARE_LF_DOT)
    mailbox = FickleMailbox([message])
    with ScriptedServer(mailbox.script) as server:
        client = Client(server, tmp_path)
        first = client.fetch("--delete")
        assert mailbox.wait_idle()
        assert first.code == 0, first.stderr
        assert client.delivered() == [as_stored(message)]
        assert mailbox.deleted == [message]
        second = client.fetch("--delete")
        assert mailbox.wait_idle()
    assert second.code == 0, second.stderr
    assert client.delivered() == [as_stored(message)]
    assert not any(line.startswith("RETR") for line in server.received[-6:])


def test_octets_that_differ_from_list_are_noted_in_the_transcript(tmp_path: Path) -> None:
    """A size that differs from LIST is not an error (servers count differently), but
    the transcript says so; the message is kept whole, as it arrived."""
    message = Message(1, BARE_LF_DOT)
    mailbox = FickleMailbox([message])
    size = len(BARE_LF_DOT)
    mailbox.plans.extend([Session(size_lies={1: 7}), Session(size_lies={1: -3})])
    with ScriptedServer(mailbox.script) as server:
        client = Client(server, tmp_path)
        fetched = client.fetch("--trace")
        retr = Mailcli(Account.scripted(server, "alice", "x"))(
            "retr", "1", "--trace", "--timeout", TIMEOUT
        )
    assert fetched.code == 0 and retr.code == 0, fetched.stderr + retr.stderr
    assert f"== message 1: {size} octets arrived, LIST said {size + 7}" in fetched.stderr
    assert f"== message 1: {size} octets arrived, LIST said {size - 3}" in retr.stderr
    assert client.delivered() == [as_stored(message)]
    assert retr.stdout.encode() == BARE_LF_DOT


# -- the stateful property test ----------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        *(b"text", b"\n", b"\r", b"\n.\n", b"\r.\n", b"\n.\r\n", b".\r\n", b"..\r\n"),
        *(b"\r\n.\r\n", b"\r\n..x\r\n", b"\n..x", b".", b"From x\r\n", b"\r\n", b"\xff\x00"),
    ]
)
# Any byte may be in a UID; an empty one or one with an LF in it (b"", b"a\nb") is malformed.
UID_BYTES = st.binary(min_size=1, max_size=6) | st.sampled_from(
    [b"a\xffb", b"\x00", b"a b", b"\xa0", b"x\r", b"\x85", b"\xc3\xa9", b"", b"a\nb"]
)
FAULT = st.one_of(
    st.just(None),
    st.tuples(st.just("drop"), st.integers(0, 24), st.integers(0, 600)),
)


def effective_uid(uid: bytes) -> bytes | None:
    """The UID as fetch reads it from `n SP uid CRLF` (split on
    ASCII space only, every other byte kept), or None when the line is malformed, which
    is a protocol error (76): no UID at all, or an LF inside it, which ends the line.
    Leading spaces belong to the separator and a trailing CR to the line end, so those
    two cannot be told apart from the UID without them (nor can a server mean them)."""
    if b"\n" in uid:
        return None
    uid = uid.lstrip(b" ").rstrip(b"\r")
    return uid or None


@st.composite
def sessions(draw: st.DrawFn, idents: list[int], number: int) -> list[tuple[Session, bool]]:
    """`number` session plans, each with --delete or not."""
    plans = []
    for index in range(number):
        mode = draw(st.sampled_from(["stable", "stable", "changed", "repeat", "bytes"]))
        uids: dict[int, bytes] = {}
        if mode == "changed":
            uids = {i: b"uid-%d-s%d" % (i, index) for i in idents}
        elif mode == "repeat" and len(idents) > 1:
            first, second = draw(st.permutations(idents))[:2]
            uids = {second: b"uid-%d" % first}
        elif mode == "bytes":
            uids = {i: draw(UID_BYTES) for i in idents}
        lies = draw(st.dictionaries(st.sampled_from(idents), st.sampled_from([-9, -1, 1, 500])))
        fault = draw(FAULT)
        drop = (fault[1], fault[2]) if fault else None
        delete = draw(st.sampled_from([True, True, False]))
        plans.append((Session(uids=uids, size_lies=lies, drop=drop), delete))
    stall_at = draw(st.none() | st.none() | st.none() | st.integers(0, number - 1))
    if stall_at is not None:  # at most one stall per example: each costs the 1 s timeout
        plan, delete = plans[stall_at]
        plans[stall_at] = (
            Session(plan.uids, plan.size_lies, stall=draw(st.integers(0, 20))),
            delete,
        )
    return plans


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Message], list[tuple[Session, bool]]]:
    count = draw(st.integers(1, 4))
    messages = [
        Message(i, b"Message-ID: <m%d@fickle.test>\r\n\r\n" % i + b"".join(parts) + b"\r\n")
        for i, parts in enumerate(
            draw(st.lists(st.lists(FRAGMENTS, max_size=8), min_size=count, max_size=count))
        )
    ]
    return messages, draw(sessions([m.ident for m in messages], draw(st.integers(1, 4))))


class Model:
    """What the server presented, and what fetch may therefore have done."""

    def __init__(self, mailbox: FickleMailbox, messages: list[Message]) -> None:
        self.mailbox = mailbox
        self.messages = messages

    def uids(self, message: Message) -> list[tuple[bytes | None, int]]:
        """(UID, LIST size) as each session presented the message."""
        uids = self.mailbox.presented.get(message.ident, [])
        sizes = self.mailbox.presented_sizes.get(message.ident, [])
        return [(effective_uid(uid), size) for uid, size in zip(uids, sizes, strict=True)]

    def ambiguous(self, message: Message) -> bool:
        """Did the server ever present one of this message's identities (UID and size)
        for another message?"""
        own = {pair for pair in self.uids(message) if pair[0] is not None}
        return any(own & set(self.uids(other)) for other in self.messages if other != message)

    def most_copies(self, message: Message) -> int:
        """One per run of equal identities in the sequence of sessions that presented it."""
        seen = self.uids(message)
        return sum(1 for index, uid in enumerate(seen) if index == 0 or seen[index - 1] != uid)


def check_run(
    result: Result, plan: Session, client: Client, model: Model, listed: list[Message]
) -> None:
    """The invariants after one run; `listed` is what the server held when it began."""
    assert result.code in ALLOWED_CODES, result.stderr
    event(f"exit {result.code}")  # --hypothesis-show-statistics: what the runs met
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    faulty = plan.drop is not None or plan.stall is not None
    uids = [plan.uids.get(m.ident, m.default_uid) for m in listed]
    malformed = any(effective_uid(uid) is None for uid in uids)
    if not faulty:
        assert result.code == (76 if malformed else 0), result.stderr
    assert client.in_tmp() == []
    delivered = client.delivered()
    stored = {as_stored(m): m for m in model.messages}
    assert all(copy in stored for copy in delivered), "a truncated, padded or foreign copy"
    for message in model.messages:
        copies = delivered.count(as_stored(message))
        assert copies <= model.most_copies(message), (message, model.uids(message))
        if message in model.mailbox.deleted and not model.ambiguous(message):
            assert copies >= 1, f"deleted on the server, never delivered: {message}"


def run_scenario(messages: list[Message], plans: list[tuple[Session, bool]]) -> None:
    mailbox = FickleMailbox(messages)
    mailbox.plans.extend(plan for plan, _ in plans)
    model = Model(mailbox, messages)
    with tempfile.TemporaryDirectory() as root, ScriptedServer(mailbox.script) as server:
        client = Client(server, Path(root))
        for plan, delete in plans:
            listed = list(mailbox.messages)
            result = client.fetch("--delete" if delete else "--keep")
            assert mailbox.wait_idle()
            check_run(result, plan, client, model, listed)
        remaining = list(mailbox.messages)
        final = client.fetch("--delete")  # a well-behaved session with the first UIDs
        assert mailbox.wait_idle()
        check_run(final, Session(), client, model, remaining)
        assert mailbox.messages == []
        event(f"ambiguous messages: {sum(map(model.ambiguous, messages))}")
        event(f"deleted before the final run: {len(messages) - len(remaining)}")
        for message in messages:
            if not model.ambiguous(message):
                assert as_stored(message) in client.delivered(), message


M0 = Message(0, b"Message-ID: <m0@fickle.test>\r\n\r\nline\n.\nmore\r\n.\r\n\r.\n\r\n")
M1 = Message(1, b"Message-ID: <m1@fickle.test>\r\n\r\n..x\n..y\r\n")
# Replies of a clean two-message session, pipelined: 0 greeting, 1 CAPA, 2 USER, 3 PASS,
# 4 LIST, 5 UIDL, 6-7 RETR, 8-9 DELE, 10 QUIT.
QUIT_REPLY = 10


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
@example(([M0, M1], [(Session(uids={1: b"a\nb"}), True)]))  # malformed UIDL line: 76
@example(([M0, M1], [(Session(stall=6), True)]))  # silent at the first RETR: 75
@example(([M0, M1], [(Session(uids={1: b"uid-0"}), True)]))  # one UID for two messages
@example(([M0, M1], [(Session(), False), (Session(uids={0: b"c", 1: b"d"}), False)]))
@example(([M0, M1], [(Session(drop=(QUIT_REPLY, 2)), True)]))  # deleted, QUIT reply cut
def test_fetch_against_a_fickle_server(
    scenario: tuple[list[Message], list[tuple[Session, bool]]],
) -> None:
    run_scenario(*scenario)


@pytest.mark.soak
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_fetch_against_a_fickle_server_soak(
    scenario: tuple[list[Message], list[tuple[Session, bool]]],
) -> None:
    run_scenario(*scenario)


def test_a_status_line_cut_short_by_a_hang_up_is_a_closed_connection(tmp_path: Path) -> None:
    mailbox = FickleMailbox([M0])
    mailbox.plans.append(Session(drop=(4, 2)))  # "+O" of LIST's reply, then the hang-up
    with ScriptedServer(mailbox.script) as server:
        result = Client(server, tmp_path).fetch()
        assert mailbox.wait_idle()
    assert result.code == 75, result.stderr


def test_a_uid_listed_for_two_messages_never_deletes_the_unfetched_one(tmp_path: Path) -> None:
    """M0 is fetched and recorded as uid-0; the server then lists M1 under uid-0 as well.
    Neither can be told apart from the delivered one: --delete deletes neither."""
    mailbox = FickleMailbox([M0, M1])
    mailbox.plans.extend([Session(), Session(uids={0: b"uid-0", 1: b"uid-0"})])
    with ScriptedServer(mailbox.script) as server:
        client = Client(server, tmp_path)
        first = client.fetch("--limit", "1")
        assert mailbox.wait_idle()
        second = client.fetch("--delete")
        assert mailbox.wait_idle()
    assert (first.code, second.code) == (0, 0), first.stderr + second.stderr
    # M1's size differs from M0's: uid-0 names another message, fetched before deleted.
    assert M0 not in mailbox.deleted
    assert as_stored(M1) in client.delivered()


M2 = Message(2, b"Message-ID: <m2@fickle.test>\r\n\r\nnew mail, a different size\r\n")


@pytest.mark.parametrize(
    ("before", "option"), [("--keep", "--delete"), ("--keep", "--keep"), ("--delete", "--delete")]
)
def test_a_reused_uid_is_a_new_message_never_deleted_unfetched(
    tmp_path: Path, before: str, option: str
) -> None:
    """M0 is fetched as uid-0; the mailbox is rebuilt: M0 is gone and a new message, M2,
    comes under uid-0 (RFC 1939 forbids it). A UID alone took M2 for M0 (from the state,
    or after M0 was deleted and forgotten, from M0's Maildir file name): `--delete`
    deleted it unread, `--keep` never fetched it. Its size tells them apart."""
    mailbox = FickleMailbox([M0])
    with ScriptedServer(mailbox.script) as server:
        client = Client(server, tmp_path)
        first = client.fetch(before)
        assert mailbox.wait_idle()
        mailbox.messages = [M2]
        mailbox.plans.extend([Session(uids={2: b"uid-0"}), Session(uids={2: b"uid-0"})])
        second = client.fetch(option)
        assert mailbox.wait_idle()
        third = client.fetch(option)
        assert mailbox.wait_idle()
    assert (first.code, second.code, third.code) == (0, 0, 0), second.stderr + third.stderr
    assert client.delivered() == sorted([as_stored(M0), as_stored(M2)])  # each once
    assert mailbox.deleted == [M0] * (before == "--delete") + [M2] * (option == "--delete")
    if before == "--keep":  # still recorded: the run says the UID was reused
        assert "reused UID 'uid-0' for another message" in second.stderr
    assert third.stderr == ""
