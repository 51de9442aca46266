"""A hostile POP3 server across sessions (issue 12): `fetch` run after `fetch` against a
mailbox that stalls, hangs up at any octet of any reply, sends bare LF and bare CR, lies
in LIST, changes, repeats and garbles UIDs, and deletes only at a successful QUIT.

What fetch promises here, checked after every run:
- the exit status is 0, 75 or 76 (never 70); a session without a fault exits 0;
- every file in the destination is, byte for byte (CRLF -> LF), a message the server
  sent: none truncated, none padded; nothing stays in tmp/;
- a message whose UIDs are its own (no other message ever presented one of them) is in
  the destination before the server deletes it, and at most once per change of its UID:
  the fetch state knows a mailbox's messages by UID, so a message presented under a UID
  it did not have before is new to it (stable UIDs: exactly once);
- a UID the server presents for two messages (reused or repeated, which RFC 1939 forbids)
  names one message to fetch: the other may be taken as already delivered, and with
  --delete be deleted unfetched. Those messages are promised nothing but the above.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Result, run_cli
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
        args = ["fetch", "--to", f"maildir:{self.maildir}", *options]
        args += ["--host", self.server.host, "--port", str(self.server.port), "--user", "alice"]
        env = {
            "MAILCLI_PASSWORD": "Fickle-Secret-1",
            "MAILCLI_FETCH_BATCH": "2",  # several batches in a mailbox of a few messages
            "XDG_STATE_HOME": str(self.root / "state"),
        }
        return run_cli([*args, "--security", "none", "--timeout", TIMEOUT], env=env)

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
    """Defect 3 of issue 12: "\\n.\\n" ended the message; the cut copy was recorded and
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
        retr = run_cli(
            ["retr", "1", "--trace", "--host", server.host, "--port", str(server.port)]
            + ["--user", "alice", "--security", "none", "--timeout", TIMEOUT],
            env={"MAILCLI_PASSWORD": "x"},
        )
    assert fetched.code == 0 and retr.code == 0, fetched.stderr + retr.stderr
    assert f"== message 1: {size} octets arrived, LIST said {size + 7}" in fetched.stderr
    assert f"== message 1: {size} octets arrived, LIST said {size - 3}" in retr.stderr
    assert client.delivered() == [as_stored(message)]
    assert retr.stdout.encode() == BARE_LF_DOT
