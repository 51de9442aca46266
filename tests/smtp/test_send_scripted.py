"""`send` against scripted servers: the cases a real server will not produce on demand."""

from __future__ import annotations

import threading
import time

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.scripted import Conn, ScriptedServer
from tests.servers.smtpscripts import smtp_server


def send(server: ScriptedServer, *extra: str) -> Result:
    """A short message in clear, as nobody: the tests that log in say ``--user``."""
    anonymous = Mailcli(Account.scripted(server, None, None))
    return anonymous(
        "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x", *extra
    )


# Knows HELO only, as some appliances do.
old_server = smtp_server(
    "502 5.5.2 command not recognized",
    greeting="220 old.example.test SMTP",
    queued="250 2.0.0 queued as OLD1",
)


def test_helo_fallback_when_ehlo_is_refused() -> None:
    with ScriptedServer(old_server) as server:
        result = send(server)
    assert result.code == 0, result.stderr
    verbs = [line.split(" ", 1)[0].upper() for line in server.received]
    assert verbs[:2] == ["EHLO", "HELO"]
    assert "queued as OLD1" in result.stdout


def test_no_greeting_times_out_with_75_within_the_timeout() -> None:
    release = threading.Event()
    with ScriptedServer(lambda conn: release.wait(30)) as server:
        started = time.monotonic()
        result = send(server, "--timeout", "1")
        elapsed = time.monotonic() - started
        release.set()
    assert result.code == 75
    assert "timed out" in result.stderr
    assert elapsed < 10  # a bound for "it did time out", not a speed measurement


def test_malformed_greeting_is_a_protocol_error_76() -> None:
    with ScriptedServer(lambda conn: conn.send("hello there, I am not SMTP")) as server:
        result = send(server)
    assert result.code == 76
    assert "malformed reply line" in result.stderr


def test_endless_reply_line_is_76_with_bounded_reading() -> None:
    def endless(conn: Conn) -> None:
        conn.send_bytes(b"220 " + b"x" * 100_000)

    with ScriptedServer(endless) as server:
        result = send(server)
    assert result.code == 76
    assert "longer than 8192" in result.stderr


def test_421_greeting_is_75() -> None:
    with ScriptedServer(lambda conn: conn.send("421 4.3.2 too busy, come back later")) as server:
        result = send(server)
    assert result.code == 75
    assert "421 4.3.2 too busy" in result.stderr


TOKEN = "ya29.token-Secret"


def bearer_login(conn: Conn, line: str) -> None:
    """Accepts the right bearer token, and answers a wrong one with the error challenge
    after which the client must send an empty line."""
    import base64

    payload = base64.b64decode(line.split(" ")[2]).decode()
    if payload == f"user=alice\x01auth=Bearer {TOKEN}\x01\x01":
        conn.send("235 2.7.0 Accepted")
    else:
        conn.send("334 eyJzdGF0dXMiOiI0MDEifQ==")
        if conn.recv_line() == "":
            conn.send("535 5.7.8 Username and Password not accepted")


# Offers only AUTH XOAUTH2.
xoauth2_server = smtp_server(
    ("250-oauth.example.test", "250 AUTH XOAUTH2"),
    {"AUTH": bearer_login},
    greeting="220 oauth.example.test ESMTP",
    queued="250 2.0.0 OK queued",
)


def test_xoauth2_with_a_token_from_the_password_command() -> None:
    with ScriptedServer(xoauth2_server) as server:
        result = send(
            server,
            "--user",
            "alice",
            "--auth",
            "xoauth2",
            "--trace",
            "--password-command",
            f"echo {TOKEN}",
        )
    assert result.code == 0, result.stderr
    assert "-> AUTH XOAUTH2 ********" in result.stderr
    assert TOKEN not in result.stderr


def test_xoauth2_wrong_token_is_77_after_the_empty_response() -> None:
    with ScriptedServer(xoauth2_server) as server:
        result = send(
            server, "--user", "alice", "--auth", "xoauth2", "--password-command", "echo expired"
        )
    assert result.code == 77
    assert "535 5.7.8" in result.stderr
    assert not any(line.upper().startswith("MAIL") for line in server.received)
