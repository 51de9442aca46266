"""RFC 2920 PIPELINING in `send`, counted in round trips: a scripted server records which
client lines arrived in one recv before it answered (tests/servers/pipelining.py).
With PIPELINING offered, MAIL, every RCPT and DATA travel together, and QUIT with the
final dot; without it, one command per round trip. Refusals and interop faults inside a
group keep the per-recipient results and exit statuses of lock-step, and nothing is
reported as sent that the server did not take."""

from __future__ import annotations

import json

import pytest

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.pipelining import PipeliningServer
from tests.servers.scripted import ScriptedServer

SENDER = "a@example.test"
NOBODY = "nobody@example.test"  # refused with 550 where a test says so


def send(server: PipeliningServer, *recipients: str, extra: tuple[str, ...] = ()) -> Result:
    with ScriptedServer(server.script) as running:
        anonymous = Mailcli(Account.scripted(running, None, None))
        return anonymous(
            "send", "--from", SENDER, "--to", ", ".join(recipients), "--body", "x", *extra
        )


def verbs(batch: list[str]) -> list[str]:
    return [line.split(" ", 1)[0].upper() for line in batch]


def test_mail_rcpt_and_data_travel_together_with_pipelining() -> None:
    server = PipeliningServer()
    result = send(server, "b@example.test", "c@example.test", "d@example.test", extra=("--trace",))
    assert result.code == 0, result.stderr
    assert [verbs(batch) for batch in server.batches] == [
        ["EHLO"],
        ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"],
        [".", "QUIT"],
    ]
    assert server.batches[1][1:4] == [
        "rcpt TO:<b@example.test>",
        "rcpt TO:<c@example.test>",
        "rcpt TO:<d@example.test>",
    ]
    assert len(server.messages) == 1
    assert "== pipelined: 5 lines in one write" in result.stderr.splitlines()
    assert "== pipelined: 2 lines in one write" in result.stderr.splitlines()


def test_one_command_per_round_trip_without_pipelining() -> None:
    server = PipeliningServer(pipelining=False)
    result = send(server, "b@example.test", "c@example.test")
    assert result.code == 0, result.stderr
    assert [verbs(batch) for batch in server.batches] == [
        ["EHLO"],
        ["MAIL"],
        ["RCPT"],
        ["RCPT"],
        ["DATA"],
        ["."],
        ["QUIT"],
    ]
    assert len(server.messages) == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lock-step"])
def test_a_refused_recipient_inside_the_group_is_67_with_its_result(pipelining: bool) -> None:
    server = PipeliningServer(pipelining=pipelining, refused=frozenset({NOBODY}))
    result = send(server, "b@example.test", NOBODY, "c@example.test", extra=("--json",))
    assert result.code == 67, result.stderr
    sent = json.loads(result.stdout)
    assert sent["accepted"] == ["b@example.test", "c@example.test"]
    assert sent["refused"] == {NOBODY: {"code": 550, "message": "5.1.1 no such user"}}
    assert sent["reply"] == "250 2.0.0 queued"
    assert len(server.messages) == 1


@pytest.mark.parametrize("data_anyway", [False, True], ids=["554-to-data", "354-anyway"])
def test_all_refused_sends_nothing_with_the_status_of_lock_step(data_anyway: bool) -> None:
    """A conforming server refuses the pipelined DATA; one that answers 354 anyway gets a
    lone dot, and nothing is reported as sent either way: what lock-step reports."""
    outcomes = []
    for pipelining in (True, False):
        server = PipeliningServer(
            pipelining=pipelining,
            refused=frozenset({NOBODY}),
            data_without_recipients=data_anyway,
        )
        result = send(server, NOBODY, extra=("--json",))
        assert server.messages == []
        outcomes.append((result.code, json.loads(result.stdout)))
    assert outcomes[0] == outcomes[1]
    code, sent = outcomes[0]
    assert code == 67
    assert sent["accepted"] == [] and sent["reply"] is None


def test_a_slow_server_gets_every_reply_matched() -> None:
    server = PipeliningServer(reply_delay=0.2, refused=frozenset({NOBODY}))
    result = send(server, NOBODY, "b@example.test", extra=("--json",))
    assert result.code == 67, result.stderr
    sent = json.loads(result.stdout)
    assert sent["accepted"] == ["b@example.test"] and list(sent["refused"]) == [NOBODY]
    assert verbs(server.batches[1]) == ["MAIL", "RCPT", "RCPT", "DATA"]
    assert len(server.messages) == 1


def test_a_server_closing_after_a_refused_recipient_is_75_nothing_sent() -> None:
    server = PipeliningServer(refused=frozenset({NOBODY}), hang_up_after_refusal=True)
    result = send(server, "b@example.test", NOBODY, "c@example.test")
    assert result.code == 75, result.stderr
    assert result.stderr.startswith("mailcli: error: ")
    assert "closed the connection" in result.stderr
    assert result.stdout == ""
    assert server.messages == []


def test_a_421_in_the_middle_of_the_group_is_75_nothing_sent() -> None:
    server = PipeliningServer(closing_at_rcpt=1)
    result = send(server, "b@example.test", "c@example.test", "d@example.test")
    assert result.code == 75, result.stderr
    assert "421 4.3.2 shutting down" in result.stderr
    assert len(result.stderr.splitlines()) <= 2  # the error and its hint: no traceback
    assert result.stdout == ""
    assert server.messages == []


@pytest.mark.parametrize("phase", ["mail", "rcpt"])
def test_quit_after_stops_where_asked_without_pipelining_past_it(phase: str) -> None:
    server = PipeliningServer()
    result = send(server, "b@example.test", "c@example.test", extra=("--quit-after", phase))
    assert result.code == 0, result.stderr
    sent_verbs = [verb for batch in server.batches for verb in verbs(batch)]
    assert "DATA" not in sent_verbs
    assert ("RCPT" in sent_verbs) == (phase == "rcpt")
    assert all(len(batch) == 1 for batch in server.batches)
    assert server.messages == []


def test_with_chunking_a_small_message_goes_with_bdat_in_the_envelopes_write() -> None:
    server = PipeliningServer(chunking=True)
    result = send(server, "b@example.test", "c@example.test", extra=("--trace",))
    assert result.code == 0, result.stderr
    assert [verbs(batch) for batch in server.batches] == [
        ["EHLO"],
        ["MAIL", "RCPT", "RCPT", "BDAT", "QUIT"],
    ]
    (message,) = server.messages
    assert message[-1] == "x"  # the body, byte for byte: BDAT counts octets
    assert "== pipelined: 5 lines and the message in one write" in result.stderr.splitlines()


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_with_chunking_refusals_keep_the_results_of_lock_step(chunking: bool) -> None:
    server = PipeliningServer(chunking=chunking, refused=frozenset({NOBODY}))
    partly = send(server, NOBODY, "b@example.test", extra=("--json",))
    assert partly.code == 67, partly.stderr
    assert json.loads(partly.stdout)["accepted"] == ["b@example.test"]
    assert len(server.messages) == 1
    nobody = PipeliningServer(chunking=chunking, refused=frozenset({NOBODY}))
    refused = send(nobody, NOBODY, extra=("--json",))
    assert refused.code == 67, refused.stderr
    assert json.loads(refused.stdout)["reply"] is None
    assert nobody.messages == []


def test_many_recipients_go_in_groups_of_a_hundred() -> None:
    recipients = [f"r{number}@example.test" for number in range(150)]
    server = PipeliningServer(chunking=True)  # too many recipients for one chunk
    result = send(server, *recipients, extra=("--json",))
    assert result.code == 0, result.stderr
    assert [len(batch) for batch in server.batches] == [1, 100, 52, 2]
    assert verbs(server.batches[2])[-1] == "DATA"
    assert json.loads(result.stdout)["accepted"] == recipients
    assert len(server.messages) == 1
