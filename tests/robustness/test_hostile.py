"""Hostile servers: each misbehaviour ends in the documented exit status, within the
timeout, in bounded memory, with nothing partial delivered, no DELE for anything not
delivered, and no credential sent where TLS was asked for and not obtained."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Measured, run_measured
from tests.servers import hostile
from tests.servers.accounts import Account, Security
from tests.servers.scripted import ScriptedServer

TIMEOUT = 1.0
MARGIN = 8.0  # process start-up and teardown on a loaded 2-core machine
MEMORY_BOUND_KIB = 64 * 1024
PASSWORD = "Hostile-Secret-1"


@pytest.fixture(autouse=True)
def released() -> Iterator[None]:
    hostile.RELEASE.clear()
    yield
    hostile.RELEASE.set()  # end any stalling script now


def run(server: ScriptedServer, *command: str, security: Security = "none") -> Measured:
    alice = Account.scripted(server, "alice", PASSWORD, security=security)
    args = [*command, *alice.args(), "--timeout", str(TIMEOUT)]
    return run_measured(args, env={**os.environ, **alice.env()})


def assert_bounded(result: Measured, code: int) -> None:
    assert result.code == code, result.stderr.decode()[-2000:]
    assert b"Traceback" not in result.stderr
    assert result.seconds < TIMEOUT + MARGIN
    assert result.peak_kib < MEMORY_BOUND_KIB, f"peak RSS {result.peak_kib // 1024} MiB"


POP3_CASES = [
    ("no-greeting", ["stat"], 75),
    ("endless-greeting", ["stat"], 76),
    ("endless-listing", ["list"], 76),
    ("malformed-status", ["stat"], 76),
    ("stall-after-pass", ["stat"], 75),
    ("close-mid-retr", ["retr", "1"], 75),
]


@pytest.mark.parametrize(
    ("mode", "command", "code"), POP3_CASES, ids=[case[0] for case in POP3_CASES]
)
def test_pop3_misbehaviour(mode: str, command: list[str], code: int) -> None:
    with ScriptedServer(hostile.pop3(mode)) as server:
        result = run(server, *command)
    assert_bounded(result, code)


@pytest.mark.parametrize(("mode", "code"), [("stls-handshake-fails", 69), ("no-stls", 69)])
def test_pop3_tls_asked_for_and_not_obtained_sends_no_credential(mode: str, code: int) -> None:
    with ScriptedServer(hostile.pop3(mode)) as server:
        result = run(server, "stat", security="starttls")
    assert_bounded(result, code)
    assert not any(
        line.upper().startswith(("USER", "PASS", "AUTH", "APOP")) for line in server.received
    )


@pytest.mark.parametrize(("mode", "code"), [("close-mid-retr", 75), ("size-lie", 76)])
def test_fetch_from_a_hostile_server_delivers_nothing_partial_and_deletes_nothing(
    mode: str, code: int, isolated_environment: Path
) -> None:
    with ScriptedServer(hostile.pop3(mode)) as server:
        result = run(server, "fetch", "--delete")
    assert_bounded(result, code)
    maildir = isolated_environment / "Maildir"
    assert os.listdir(maildir / "new") == [] and os.listdir(maildir / "tmp") == []
    assert not any(line.upper().startswith("DELE") for line in server.received)


SMTP_CASES = [
    ("no-greeting", 75),
    ("endless-reply", 76),
    ("close-mid-data", 75),
]


@pytest.mark.parametrize(("mode", "code"), SMTP_CASES, ids=[case[0] for case in SMTP_CASES])
def test_smtp_misbehaviour(mode: str, code: int) -> None:
    with ScriptedServer(hostile.smtp(mode)) as server:
        anonymous = Account.scripted(server, None, None)
        message = ["--from", "a@example.test", "--to", "b@example.test", "--body", "x"]
        result = run_measured(["send", *anonymous.args(), "--timeout", str(TIMEOUT), *message])
    assert_bounded(result, code)


@pytest.mark.parametrize("mode", ["starttls-handshake-fails", "no-starttls"])
def test_smtp_tls_asked_for_and_not_obtained_sends_no_credential(mode: str) -> None:
    with ScriptedServer(hostile.smtp(mode)) as server:
        result = run(
            server,
            "send",
            "--from",
            "a@example.test",
            "--to",
            "b@example.test",
            "--body",
            "x",
            security="starttls",
        )
    assert_bounded(result, 69)
    assert not any(line.upper().startswith(("AUTH", "MAIL")) for line in server.received)
