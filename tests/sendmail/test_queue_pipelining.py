"""`queue run` and sendmail over one connection with PIPELINING: each queued message is one
pipelined group (MAIL, RCPT, DATA in one write), the next MAIL follows a completed
transaction without RSET, and the last message's QUIT goes with its final dot. Counted
in recv batches by a scripted server (tests/servers/pipelining.py)."""

from __future__ import annotations

from tests.helpers import run_cli
from tests.servers.pipelining import PipeliningServer
from tests.servers.ports import free_port
from tests.servers.scripted import ScriptedServer

MESSAGES = 3


def env(port: int) -> dict[str, str]:
    return {
        "MAILCLI_SMTP_HOST": "127.0.0.1",
        "MAILCLI_SMTP_PORT": str(port),
        "MAILCLI_SMTP_SECURITY": "none",
    }


def sendmail(port: int, recipient: str, subject: str) -> int:
    message = f"From: cron@example.test\nTo: {recipient}\nSubject: {subject}\n\nbody\n"
    return run_cli(["sendmail", "-i", recipient], env=env(port), input=message).code


def verbs(batches: list[list[str]]) -> list[list[str]]:
    return [[line.split(" ", 1)[0].upper() for line in batch] for batch in batches]


def test_a_queue_run_pipelines_each_message_without_rset() -> None:
    for number in range(MESSAGES):
        assert sendmail(free_port(), f"r{number}@example.test", f"message {number}") == 0
    server = PipeliningServer()
    with ScriptedServer(server.script) as running:
        ran = run_cli(["queue", "run"], env=env(running.port))
    assert ran.code == 0, ran.stderr
    transaction = [["MAIL", "RCPT", "DATA"], ["."]]
    expected = [["EHLO"], *transaction * (MESSAGES - 1), ["MAIL", "RCPT", "DATA"], [".", "QUIT"]]
    assert verbs(server.batches) == expected
    assert len(server.messages) == MESSAGES
    listed = run_cli(["queue", "list"])
    assert listed.code == 0 and listed.stdout.strip() in ("", "the queue is empty"), listed


def test_sendmail_delivers_in_one_group_and_quits_with_the_dot() -> None:
    server = PipeliningServer()
    with ScriptedServer(server.script) as running:
        assert sendmail(running.port, "r@example.test", "now") == 0
    assert verbs(server.batches) == [["EHLO"], ["MAIL", "RCPT", "DATA"], [".", "QUIT"]]
    assert len(server.messages) == 1
