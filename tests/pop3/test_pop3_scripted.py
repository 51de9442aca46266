"""POP3 against scripted servers: what Dovecot will not do on demand."""

from __future__ import annotations

import base64
import threading

import pytest

from mailcli.auth.sasl import xoauth2
from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account, Security
from tests.servers.pop3scripts import minimal_server, pop3_server
from tests.servers.scripted import Conn, HangUp, Script, ScriptedServer, hang_up


def run(server: ScriptedServer, *command: str, security: Security = "starttls") -> Result:
    account = Account.scripted(server, "alice", "Secret-pw", security=security)
    return Mailcli(account)(*command, "--timeout", "2")


def test_stls_required_but_not_offered_sends_no_credentials() -> None:
    with ScriptedServer(minimal_server(["USER", "UIDL"])) as server:
        result = run(server, "stat")
    assert result.code == 69
    assert "does not offer STLS" in result.stderr
    assert not any(
        line.upper().startswith(("USER", "PASS", "AUTH", "APOP")) for line in server.received
    )


def test_cleartext_when_asked_for() -> None:
    with ScriptedServer(minimal_server(["USER"])) as server:
        result = run(server, "retr", "1", security="none")
    assert result.code == 0, result.stderr
    assert result.stdout == "Subject: x\r\n\r\n.dot\r\n"
    assert "PASS Secret-pw" in server.received


def test_server_without_capa_still_works() -> None:
    no_capa = pop3_server(
        answers={"CAPA": "-ERR unknown command", "STAT": "+OK 0 0"}, greeting="+OK old server"
    )

    with ScriptedServer(no_capa) as server:
        result = run(server, "stat", security="none")
    assert result.code == 0, result.stderr
    assert result.stdout == "0\t0\n"


def test_auth_and_in_use_response_codes() -> None:
    def refusing(code: str) -> Script:
        capabilities = ["USER", "RESP-CODES", "AUTH-RESP-CODE"]
        return pop3_server(capabilities, {"PASS": hang_up(f"-ERR [{code}] no")})

    for code, status in (("AUTH", 77), ("IN-USE", 75), ("SYS/TEMP", 75), ("SYS/PERM", 69)):
        with ScriptedServer(refusing(code)) as server:
            result = run(server, "stat", security="none")
        assert result.code == status, (code, result.stderr)


def test_malformed_stat_reply_is_76() -> None:
    script = pop3_server([], {"STAT": "+OK lots of octets"})
    with ScriptedServer(script) as server:
        result = run(server, "stat", security="none")
    assert result.code == 76
    assert "malformed STAT reply" in result.stderr


def test_stall_after_pass_times_out_with_75() -> None:
    release = threading.Event()

    def stall(conn: Conn, line: str) -> None:
        release.wait(30)
        raise HangUp

    stalling = pop3_server([], {"PASS": stall})

    with ScriptedServer(stalling) as server:
        result = run(server, "stat", security="none")
        release.set()
    assert result.code == 75
    assert "timed out" in result.stderr


def test_connection_dropped_mid_retr_is_75_and_leaves_no_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dropping = pop3_server([], {"RETR": hang_up("+OK", "Subject: half", "", "first line")})

    target = tmp_path / "out" / "msg.eml"
    target.parent.mkdir()
    with ScriptedServer(dropping) as server:
        result = run(server, "retr", "1", "-o", str(target), security="none")
    assert result.code == 75
    assert list(target.parent.iterdir()) == []


def xoauth2_server(conn: Conn) -> None:
    """Offers SASL XOAUTH2; takes the token `Secret-pw` for alice and answers any other
    with the JSON error challenge, then (after the client's answer, kept in `received`
    as sent) a plain -ERR."""
    accepted = "AUTH XOAUTH2 " + base64.b64encode(xoauth2("alice", "Secret-pw")).decode()
    conn.send("+OK ready")
    while line := conn.recv_line():
        verb = line.split(" ", 1)[0].upper()
        if verb == "CAPA":
            conn.send("+OK", "USER", "SASL PLAIN XOAUTH2", ".")
        elif verb == "AUTH" and line != accepted:
            conn.send("+ " + base64.b64encode(b'{"status":"401"}').decode())
            conn.received.append(repr(conn.file.readline()))
            conn.send("-ERR Authentication failed.")
        elif verb == "STAT":
            conn.send("+OK 0 0")
        else:
            conn.send("+OK")
            if verb == "QUIT":
                return


@pytest.mark.parametrize(("token", "status"), [("Secret-pw", 0), ("expired", 77)])
def test_xoauth2_with_a_token_from_the_password_chain(token: str, status: int) -> None:
    with ScriptedServer(xoauth2_server) as server:
        account = Account.scripted(server, "alice", token, security="none")
        result = Mailcli(account)("stat", "--auth", "xoauth2", "--trace", "--timeout", "2")
    assert result.code == status, result.stderr
    assert "-> AUTH XOAUTH2 ********" in result.stderr
    assert token not in result.stderr
    if status:
        assert "authentication as 'alice' failed: -ERR Authentication failed." in result.stderr
        auth = next(i for i, line in enumerate(server.received) if line.startswith("AUTH"))
        assert server.received[auth + 1] == repr(b"\r\n")  # the error challenge's answer
