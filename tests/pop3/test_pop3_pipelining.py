"""Round trips of the POP3 commands, counted by a scripted server that records which
client lines arrived together (tests/servers/pop3pipelining.py): with PIPELINING offered,
`list` sends LIST and UIDL in one write, and a command that marks nothing for deletion
sends QUIT in the write of its last command; without PIPELINING, one line at a time.
`dele` keeps QUIT alone, after every DELE's answer: there it is the commit point."""

from __future__ import annotations

import pytest

from tests.helpers import Mailcli, Result
from tests.servers import slow
from tests.servers.accounts import Account
from tests.servers.pop3pipelining import Pop3PipeliningServer, QuitAnswer
from tests.servers.scripted import ScriptedServer

LOGIN = [["CAPA"], ["USER u"], ["PASS pw"]]
LISTING = "1\t28\tuid-1\n2\t36\tuid-2\n"

# command -> (its output, the batches after the login with PIPELINING offered)
PIPELINED = {
    "stat": (["stat"], "2\t64\n", [["STAT", "QUIT"]]),
    "list": (["list"], LISTING, [["LIST", "UIDL", "QUIT"]]),
    "uidl": (["uidl"], "1\tuid-1\n2\tuid-2\n", [["UIDL", "QUIT"]]),
    "list-2": (["list", "2"], "2\t36\tuid-2\n", [["LIST 2"], ["UIDL 2", "QUIT"]]),
    "top": (["top", "1"], "Subject: one\r\n\r\n", [["TOP 1 0", "QUIT"]]),
    "retr": (["retr", "2"], "Subject: two\r\n\r\n.starts with a dot\r\n", [["RETR 2", "QUIT"]]),
    "retr-uid": (
        ["retr", "--uid", "uid-1"],
        "Subject: one\r\n\r\nfirst body\r\n",
        [["UIDL"], ["RETR 1", "QUIT"]],
    ),
    "rset": (["rset"], "RSET\t+OK\nQUIT\t+OK bye\n", [["RSET", "QUIT"]]),
    "headers": (["list", "--headers"], None, [["LIST", "UIDL"], ["TOP 1 0", "TOP 2 0", "QUIT"]]),
}


def run(server: ScriptedServer, *command: str) -> Result:
    return Mailcli(Account.scripted(server))(*command, "--timeout", "2")


def lines_of(batches: list[list[str]]) -> list[str]:
    return [line for batch in batches for line in batch]


@pytest.mark.parametrize("name", list(PIPELINED))
def test_the_last_command_carries_quit_when_the_server_pipelines(name: str) -> None:
    command, output, expected = PIPELINED[name]
    server = Pop3PipeliningServer()
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, *command)
    assert result.code == 0, result.stderr
    if output is not None:
        assert result.stdout == output
    assert server.batches == LOGIN + expected


@pytest.mark.parametrize("name", list(PIPELINED))
def test_without_pipelining_every_line_waits_for_its_answer(name: str) -> None:
    command, output, expected = PIPELINED[name]
    server = Pop3PipeliningServer(pipelining=False)
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, *command)
    assert result.code == 0, result.stderr
    if output is not None:
        assert result.stdout == output
    assert server.batches == [[line] for line in lines_of(LOGIN + expected)]


def test_the_trace_shows_what_went_out_together() -> None:
    server = Pop3PipeliningServer()
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, "list", "--trace")
    assert result.code == 0, result.stderr
    trace = result.stderr.splitlines()
    group = trace.index("== pipelined: 3 lines in one write")
    assert trace[group + 1 : group + 4] == ["-> LIST", "-> UIDL", "-> QUIT"]
    assert trace[-1] == "<- +OK bye"  # QUIT's answer is still read, after the listings


def test_a_refused_uidl_in_the_group_lists_without_uids() -> None:
    for pipelining in (True, False):
        server = Pop3PipeliningServer(pipelining=pipelining, uidl=False)
        with ScriptedServer(server.script) as scripted:
            result = run(scripted, "list")
        assert result.code == 0, result.stderr
        assert result.stdout == "1\t28\t-\n2\t36\t-\n"
        assert lines_of(server.batches[3:]) == ["LIST", "UIDL", "QUIT"]
        assert len(server.batches) == (4 if pipelining else 6)


@pytest.mark.parametrize("answer", ["err", "hang-up"])
@pytest.mark.parametrize("pipelining", [True, False])
def test_a_failing_quit_with_nothing_marked_loses_nothing(
    answer: QuitAnswer, pipelining: bool
) -> None:
    """The listing is in: -ERR to QUIT, or a hang-up instead of its answer, changes
    nothing when no DELE was sent; the trace says what happened."""
    server = Pop3PipeliningServer(pipelining=pipelining, quit=answer)
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, "stat", "--trace")
    assert result.code == 0, result.stderr
    assert result.stdout == "2\t64\n"
    assert "== QUIT failed (" in result.stderr
    assert "mailcli: error" not in result.stderr


@pytest.mark.parametrize("pipelining", [True, False])
def test_dele_sends_quit_alone_and_deletes_only_at_its_ok(pipelining: bool) -> None:
    server = Pop3PipeliningServer(pipelining=pipelining)
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, "dele", "1-2")
    assert result.code == 0, result.stderr
    assert server.deleted == [1, 2]
    assert server.batches[-1] == ["QUIT"]
    dele = ["DELE 1", "DELE 2"]
    assert server.batches[-3:-1] == ([["UIDL"], dele] if pipelining else [["DELE 1"], ["DELE 2"]])


@pytest.mark.parametrize(("answer", "status"), [("err", 69), ("hang-up", 75)])
def test_dele_fails_when_quit_does_not_answer_ok(answer: QuitAnswer, status: int) -> None:
    server = Pop3PipeliningServer(quit=answer)
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, "dele", "1")
    assert result.code == status, result.stderr
    assert result.stderr.startswith("mailcli: error: ")
    assert server.deleted == []


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
def test_a_slow_answer_to_quit_with_nothing_marked_still_gives_the_result(
    behaviour: slow.Behaviour,
) -> None:
    """QUIT went with STAT; its answer never completes: --timeout ends the wait, and
    the result stands (nothing was marked, nothing can be lost)."""
    with ScriptedServer(slow.pop3("QUIT", behaviour, pipelining=True)) as scripted:
        result = run(scripted, "stat", "--trace")
    assert result.code == 0, result.stderr
    assert result.stdout == "1\t40\n"
    assert "== QUIT failed (" in result.stderr


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
def test_a_slow_answer_to_quit_after_dele_is_75(behaviour: slow.Behaviour) -> None:
    with ScriptedServer(slow.pop3("QUIT", behaviour, pipelining=True)) as scripted:
        result = run(scripted, "dele", "1")
    assert result.code == 75, result.stderr
    assert ("too slow" if behaviour == "dribble" else "timed out") in result.stderr


@pytest.mark.parametrize("pipelining", [True, False])
def test_list_of_given_numbers_from_a_server_without_uidl(pipelining: bool) -> None:
    """LIST 2 answered: message 2 exists, so a -ERR to UIDL 2 says the server has no
    UIDL (as for the whole mailbox), not that there is no message 2."""
    server = Pop3PipeliningServer(pipelining=pipelining, uidl=False)
    with ScriptedServer(server.script) as scripted:
        result = run(scripted, "list", "2")
        missing = run(scripted, "list", "3")
    assert result.code == 0, result.stderr
    assert result.stdout == "2\t36\t-\n"
    assert missing.code == 66, missing.stderr
