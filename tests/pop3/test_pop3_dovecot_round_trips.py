"""Round trips against the throwaway Dovecot, which offers PIPELINING in CAPA: the
commands that mark nothing send QUIT in the write of their last command (and `list`
sends LIST and UIDL together), with the same results; `dele` sends QUIT alone, and only
its +OK deletes."""

from __future__ import annotations

import pytest

from tests.helpers import Mailcli
from tests.servers.accounts import numbered_message
from tests.servers.fixtures import Mailbox

MESSAGES = [numbered_message(1, b"hello\n"), numbered_message(2, b".dot\nend\n")]
SIZES = [len(m.replace(b"\n", b"\r\n")) for m in MESSAGES]

# command -> the lines of the write that carries QUIT
GROUPS = {
    "stat": (["stat"], ["STAT", "QUIT"]),
    "list": (["list"], ["LIST", "UIDL", "QUIT"]),
    "uidl": (["uidl"], ["UIDL", "QUIT"]),
    "top": (["top", "2", "1"], ["TOP 2 1", "QUIT"]),
    "retr": (["retr", "2"], ["RETR 2", "QUIT"]),
    "headers": (["list", "--headers"], ["TOP 1 0", "TOP 2 0", "QUIT"]),
}


def group_after(trace: list[str], lines: list[str]) -> list[str]:
    """The lines sent right after the `== pipelined: N lines in one write` mark."""
    mark = trace.index(f"== pipelined: {len(lines)} lines in one write")
    return [line.removeprefix("~> ") for line in trace[mark + 1 : mark + 1 + len(lines)]]


@pytest.mark.parametrize("name", list(GROUPS))
def test_quit_goes_with_the_last_command_and_its_reply_is_read(
    mailcli: Mailcli, mailbox: Mailbox, name: str
) -> None:
    mailbox.drop(*MESSAGES)
    command, group = GROUPS[name]
    traced = mailcli(*command, "--trace")
    assert traced.code == 0, traced.stderr
    trace = traced.stderr.splitlines()
    assert group_after(trace, group) == group
    assert trace.count("~> QUIT") == 1
    assert trace[-1].startswith("<~ +OK")  # Dovecot's answer to QUIT, read last
    assert mailcli(*command).stdout == traced.stdout  # the trace changes nothing


def test_results_are_the_servers(mailcli: Mailcli, mailbox: Mailbox) -> None:
    mailbox.drop(*MESSAGES)
    assert mailcli.json("stat") == {"messages": 2, "octets": sum(SIZES)}
    listed = mailcli.json("list")["messages"]
    uids = mailcli.json("uidl")["messages"]
    assert [(m["number"], m["size"]) for m in listed] == [(1, SIZES[0]), (2, SIZES[1])]
    assert [m["uid"] for m in listed] == [m["uid"] for m in uids] and all(m["uid"] for m in uids)
    assert mailcli("retr", "2").stdout == MESSAGES[1].decode().replace("\n", "\r\n")
    head = MESSAGES[1].decode().replace("\n", "\r\n").split("\r\n\r\n")[0]
    assert mailcli("top", "2", "1").stdout == head + "\r\n\r\n.dot\r\n"


def test_dele_sends_quit_alone_and_deletes_at_its_ok(mailcli: Mailcli, mailbox: Mailbox) -> None:
    mailbox.drop(*MESSAGES)
    traced = mailcli("dele", "1", "--trace")
    assert traced.code == 0, traced.stderr
    trace = traced.stderr.splitlines()
    quit = trace.index("~> QUIT")
    assert trace[quit - 2 : quit] == ["~> DELE 1", "<~ +OK Marked to be deleted."]
    assert trace[quit + 1].startswith("<~ +OK")
    assert mailcli.json("stat")["messages"] == 1
    unfinished = mailcli("shell", input="dele 1\n")  # marked, no QUIT: nothing deleted
    assert unfinished.code == 0, unfinished.stderr
    assert mailcli.json("stat")["messages"] == 1
