"""UIDs with any byte, against a scripted POP3 server: recorded
byte-exactly, never split on Unicode spaces, never colliding, never poisoning the state."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import Mailcli, Result, run_process
from tests.servers.accounts import Account
from tests.servers.scripted import Conn, ScriptedServer

HOSTILE_UIDS = [b"plain-1", b"a\xffb", b"c\x01d", b"e\xa0f", b"g\xc2\xa0h", b"i\x7fj%#k"]


class Pop3Box:
    """A tiny stateful POP3 mailbox: UIDs as raw bytes; DELE takes effect at QUIT."""

    def __init__(self, messages: dict[bytes, bytes]) -> None:
        self.messages = dict(messages)  # uid -> body
        self.deleted: list[bytes] = []

    def script(self, conn: Conn) -> None:
        listed = list(self.messages.items())
        marked: set[int] = set()
        conn.send("+OK ready")
        while line := conn.recv_line():
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb == "CAPA":
                conn.send("+OK", "USER", "UIDL", ".")
            elif verb == "LIST":
                lines = [f"{n} {len(body)}" for n, (_, body) in enumerate(listed, 1)]
                conn.send("+OK", *lines, ".")
            elif verb == "UIDL":
                body = b"".join(b"%d %s\r\n" % (n, uid) for n, (uid, _) in enumerate(listed, 1))
                conn.send_bytes(b"+OK\r\n" + body + b".\r\n")
            elif verb == "RETR":
                conn.send_bytes(b"+OK\r\n" + listed[int(argument) - 1][1] + b".\r\n")
            elif verb == "DELE":
                marked.add(int(argument))
                conn.send("+OK marked")
            elif verb == "QUIT":
                for number in sorted(marked):
                    uid = listed[number - 1][0]
                    self.deleted.append(uid)
                    del self.messages[uid]
                conn.send("+OK bye")
                return
            else:
                conn.send("+OK")


def body(uid: bytes) -> bytes:
    return b"Subject: " + uid.hex().encode() + b"\r\n\r\nbody\r\n"


def fetch(server: ScriptedServer, *extra: str) -> Result:
    return Mailcli(Account.scripted(server))("fetch", "--json", *extra)


def delivered(home: Path) -> list[bytes]:
    new = home / "Maildir" / "new"
    return sorted(p.read_bytes() for p in new.iterdir()) if new.is_dir() else []


def test_hostile_uids_are_fetched_once_and_the_next_run_fetches_nothing(
    isolated_environment: Path,
) -> None:
    box = Pop3Box({uid: body(uid) for uid in HOSTILE_UIDS})
    with ScriptedServer(box.script) as server:
        first = fetch(server)
        second = fetch(server)
        third = fetch(server)
    assert first.code == 0, first.stderr
    assert json.loads(first.stdout)["fetched"] == len(HOSTILE_UIDS)
    for result in (second, third):  # was: 78 "damaged state" from the second run on
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["fetched"] == 0
    expected = sorted(body(uid).replace(b"\r\n", b"\n") for uid in HOSTILE_UIDS)
    assert delivered(isolated_environment) == expected


def test_uids_differing_only_after_a_nbsp_never_collide(isolated_environment: Path) -> None:
    """`x NBSP one` was recorded as `x`: a later `x NBSP two` counted as delivered, and
    --delete deleted it on the server without ever fetching it."""
    for nbsp in (b"\xc2\xa0", b"\xa0"):
        first_uid, second_uid = b"x" + nbsp + b"one", b"x" + nbsp + b"two"
        box = Pop3Box({first_uid: body(first_uid)})
        with ScriptedServer(box.script) as server:
            assert fetch(server).code == 0
            box.messages[second_uid] = body(second_uid)
            result = fetch(server, "--delete")
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["fetched"] == 1
        assert sorted(box.deleted) == sorted([first_uid, second_uid])
        kept = delivered(isolated_environment)
        for uid in box.deleted:  # deleted only what is in the Maildir
            assert body(uid).replace(b"\r\n", b"\n") in kept


def test_uidl_and_list_print_any_uid_and_retr_dele_match_it_exactly(
    isolated_environment: Path,
) -> None:
    box = Pop3Box({uid: body(uid) for uid in HOSTILE_UIDS})
    env = {**os.environ, "MAILCLI_PASSWORD": "pw"}
    with ScriptedServer(box.script) as server:
        common = Account.scripted(server).args()
        as_json = run_process(["uidl", "--json", *common], env=env)
        tsv = run_process(["list", *common], env=env)
        listed = run_process(["list", "--json", *common], env=env)
        retr = run_process(["retr", "--uid", os.fsdecode(b"a\xffb"), *common], env=env)
        dele = run_process(["dele", "--uid", "g\u00a0h", *common], env=env)
    for result in (as_json, tsv, listed, retr, dele):
        assert result.returncode == 0, result.stderr
    shown = [m["uid"] for m in json.loads(as_json.stdout)["messages"]]
    assert shown == ["plain-1", "a\\xffb", "c\x01d", "e\\xa0f", "g\u00a0h", "i\x7fj%#k"]
    assert [m["uid"] for m in json.loads(listed.stdout)["messages"]] == shown
    assert tsv.stdout.split(b"\n")[1] == b"2\t%d\ta\\xffb" % len(body(b"a\xffb"))
    assert retr.stdout == body(b"a\xffb")
    assert box.deleted == [b"g\xc2\xa0h"]
