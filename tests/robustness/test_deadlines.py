"""The time family: a server that says nothing, or dribbles a reply one byte at a time,
at the greeting or at a command's own reply, for every command that connects; each ends
with its documented status (`--timeout` bounds every reply and the pace of a transfer:
`mailcli/network.py`). Plus a large RETR that is slow but moving, which must go through,
and the OAuth2 token endpoint dribbling or silent during a login.

Durations are never asserted: each run has a generous subprocess timeout as its safety
net, which is how a client that never gives up fails here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

from mailcli.auth.oauth.store import token_store
from mailcli.auth.oauth.tokens import TokenSet
from mailcli.config import OAuthSettings
from mailcli.endpoint import DEFAULT_TIMEOUT, ConnectionOptions, resolve_endpoint
from mailcli.errors import ConfigError
from tests.helpers import run_process, write_config
from tests.servers import slow
from tests.servers.ports import HOST
from tests.servers.scripted import ScriptedServer

TIMEOUT = "1"  # --timeout for every run: small, so the family stays fast
SAFETY = 60  # seconds: far beyond any documented end; reaching it is the failure
TEMPFAIL = 75


class Command(NamedTuple):
    protocol: str  # "pop3" or "smtp": which scripted server
    args: tuple[str, ...]
    own: str  # the verb whose reply is this command's own ("." : the final dot's)
    chunking: bool = False  # the SMTP server offers CHUNKING too
    pipelining: bool = False  # the POP3 server offers PIPELINING (SMTP's always does)


SEND = ("send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x")
COMMANDS = {
    "stat": Command("pop3", ("stat",), "STAT"),
    "list": Command("pop3", ("list",), "LIST"),
    "uidl": Command("pop3", ("uidl",), "UIDL"),
    "top": Command("pop3", ("top", "1"), "TOP"),
    "retr": Command("pop3", ("retr", "1"), "RETR"),
    "dele": Command("pop3", ("dele", "1"), "DELE"),
    "rset": Command("pop3", ("rset",), "RSET"),
    "capa": Command("pop3", ("capa",), "CAPA"),
    "fetch": Command("pop3", ("fetch", "--to", "maildir:{tmp}/Maildir"), "RETR"),
    "check-pop3": Command("pop3", ("check", "pop3"), "CAPA"),
    # Inside a pipelined group: UIDL after LIST's listing; QUIT goes with them too.
    "list-uidl": Command("pop3", ("list",), "UIDL", pipelining=True),
    "send": Command("smtp", SEND, "."),
    # Inside the pipelined group (MAIL, RCPT, DATA in one write) and the BDAT write.
    "send-mail": Command("smtp", SEND, "MAIL"),
    "send-rcpt": Command("smtp", SEND, "RCPT"),
    "send-bdat": Command("smtp", SEND, "BDAT", chunking=True),
    "check-smtp": Command("smtp", ("check", "smtp"), "EHLO"),
}
WHERE = ("greeting", "own")


def server_for(command: Command, where: str, behaviour: slow.Behaviour) -> ScriptedServer:
    at = "greeting" if where == "greeting" else command.own
    if command.protocol == "pop3":
        return ScriptedServer(slow.pop3(at, behaviour, pipelining=command.pipelining))
    return ScriptedServer(slow.smtp(at, behaviour, chunking=command.chunking))


def mailcli(args: Sequence[str], server: ScriptedServer) -> subprocess.CompletedProcess[bytes]:
    connection = ["--host", HOST, "--port", str(server.port), "--security", "none"]
    return run_process(
        [*args, *connection, "--timeout", TIMEOUT],
        env={**os.environ, "MAILCLI_PASSWORD": "pw"},
        timeout=SAFETY,
    )


def one_line_error(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("mailcli: error: ")]
    assert len(errors) == 1, text
    return errors[0]


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_silent_or_dribbling_server_ends_the_command_with_75(
    name: str, where: str, behaviour: slow.Behaviour, tmp_path: Path
) -> None:
    command = COMMANDS[name]
    args = [arg.format(tmp=tmp_path) for arg in command.args]
    user = ["--user", "u"] if command.protocol == "pop3" and name != "check-pop3" else []
    with server_for(command, where, behaviour) as server:
        done = mailcli([*args, *user], server)
    assert done.returncode == TEMPFAIL, done.stderr
    if name.startswith("check-"):  # the report says why, on stdout
        report = done.stdout.decode()
        assert ("too slow" if behaviour == "dribble" else "timed out") in report, report
        return
    error = one_line_error(done.stderr)
    assert ("server too slow" if behaviour == "dribble" else "timed out") in error, error
    if name == "fetch":
        assert not any((tmp_path / "Maildir").rglob("*.*")), "nothing may be delivered"


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
def test_a_server_slow_with_the_scram_server_final_ends_send_with_75(
    behaviour: slow.Behaviour,
) -> None:
    """SCRAM's second step is a reply like any other: whole within --timeout."""
    with ScriptedServer(slow.smtp_scram(behaviour)) as server:
        done = mailcli([*SEND, "--user", "u", "--auth", "scram-sha-256"], server)
    assert done.returncode == TEMPFAIL, done.stderr
    (auth,) = [i for i, line in enumerate(server.received) if line.startswith("AUTH SCRAM")]
    assert len(server.received) > auth + 1, server.received  # the client-final went out
    error = one_line_error(done.stderr)
    assert ("server too slow" if behaviour == "dribble" else "timed out") in error, error


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
def test_a_silent_or_dribbling_socks5_proxy_ends_the_command_with_75(
    behaviour: slow.Behaviour,
) -> None:
    """The proxy's replies are under the same rule as a server's: each complete within
    --timeout (a dribbled 257-octet CONNECT reply would take 13 s, a byte per 50 ms)."""
    with ScriptedServer(slow.socks5_proxy(behaviour)) as proxy:
        args = ["stat", "--user", "u", "--proxy", f"socks5://{HOST}:{proxy.port}"]
        done = mailcli(args, proxy)  # the target never answers: the proxy is the test
    assert done.returncode == TEMPFAIL, done.stderr
    error = one_line_error(done.stderr)
    assert f"the SOCKS5 proxy {HOST}:{proxy.port}" in error, error
    assert ("too slow" if behaviour == "dribble" else "did not answer") in error, error


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
@pytest.mark.parametrize("where", ("greeting", "."))
def test_sendmail_queues_and_queue_run_defers_on_a_silent_or_dribbling_server(
    where: str, behaviour: slow.Behaviour
) -> None:
    """sendmail takes no --timeout: MAILCLI_SMTP_TIMEOUT gives it one. A temporary failure
    is queued (0, as documented for sendmail); `queue run` then exits 75."""
    with ScriptedServer(slow.smtp(where, behaviour)) as server:
        env = {
            **os.environ,
            "MAILCLI_SMTP_HOST": HOST,
            "MAILCLI_SMTP_PORT": str(server.port),
            "MAILCLI_SMTP_SECURITY": "none",
            "MAILCLI_SMTP_TIMEOUT": TIMEOUT,
        }
        message = b"From: a@example.test\nTo: b@example.test\nSubject: slow\n\nbody\n"
        queued = run_process(
            ["sendmail", "-i", "b@example.test"], env=env, input=message, timeout=SAFETY
        )
        assert queued.returncode == 0, queued.stderr
        notice = queued.stderr.decode()
        assert notice.startswith("mailcli: queued: "), notice
        assert ("too slow" if behaviour == "dribble" else "timed out") in notice, notice
        again = run_process(["queue", "run"], env=env, timeout=SAFETY)
    assert again.returncode == TEMPFAIL, again.stderr
    assert "Traceback" not in again.stderr.decode()


def test_a_large_retr_that_keeps_moving_is_not_cut(tmp_path: Path) -> None:
    """~190 KiB in 4 KiB pieces 1/16 s apart: about three timeouts long, far more than a
    reply may take, at 64 KiB/s, far above the minimum rate."""
    line = b"y" * 76 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (190 * 1024 // len(line))
    with ScriptedServer(slow.steady_retr(body, 4096, 1 / 16)) as server:
        done = mailcli(["retr", "1", "--user", "u"], server)
    assert done.returncode == 0, done.stderr
    assert done.stdout == body


# --- the OAuth2 token endpoint during a login -------------------------------------------


def oauth_account(config: Path, endpoint: ScriptedServer, protocol: str, port: int) -> None:
    write_config(
        config,
        f"http://{HOST}:{endpoint.port}",
        extra='from = "alice@example.test"\n',
        servers=f'[accounts.work.{protocol}]\nhost = "{HOST}"\nport = {port}\nsecurity = "none"\n',
        client_id="mailcli-test",
        device_url=None,
        revoke_url=None,
        scopes=None,
    )
    settings = OAuthSettings(provider="custom", client_id="mailcli-test", token_store="file")
    due = TokenSet("old-access", expires_at=0.0, refresh_token="refresh-me", lifetime=3600.0)
    token_store("work", settings).save(due)


LOGINS = {  # a command whose login needs the token refreshed, and its well-behaved server
    "stat": (("stat",), slow.pop3("never", "silent"), "pop3"),
    "send": (
        ("send", "--to", "b@example.test", "--body", "x"),
        slow.smtp("never", "silent"),
        "smtp",
    ),
}


@pytest.mark.parametrize("behaviour", slow.BEHAVIOURS)
@pytest.mark.parametrize("login", list(LOGINS))
def test_a_silent_or_dribbling_token_endpoint_ends_the_login_with_75(
    login: str, behaviour: slow.Behaviour, config_file: Path
) -> None:
    """The refresh made for the login takes the session's --timeout (not its own 30 s)."""
    args, script, protocol = LOGINS[login]
    with ScriptedServer(slow.token_endpoint(behaviour)) as endpoint, ScriptedServer(script) as mail:
        oauth_account(config_file, endpoint, protocol, mail.port)
        done = run_process([*args, "-a", "work", "--timeout", TIMEOUT], timeout=SAFETY)
    assert done.returncode == TEMPFAIL, done.stderr
    error = one_line_error(done.stderr)
    expected = "too slow" if behaviour == "dribble" else "timed out"
    assert "OAuth2 endpoint" in error and expected in error, error
    assert token_store("work", OAuthSettings("custom", token_store="file")).load(), "tokens kept"


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_a_timeout_from_the_environment_must_be_seconds(value: str) -> None:
    env = {"MAILCLI_SMTP_HOST": HOST, "MAILCLI_SMTP_TIMEOUT": value}
    with pytest.raises(ConfigError) as refused:
        resolve_endpoint("smtp", None, ConnectionOptions(), env)
    assert refused.value.exit_status == 78 and "MAILCLI_SMTP_TIMEOUT" in refused.value.message


def test_the_timeout_option_beats_the_environment_which_beats_the_default() -> None:
    env = {"MAILCLI_POP3_HOST": HOST, "MAILCLI_POP3_TIMEOUT": "2.5"}
    assert resolve_endpoint("pop3", None, ConnectionOptions(), env).timeout == 2.5
    assert resolve_endpoint("pop3", None, ConnectionOptions(timeout=7.0), env).timeout == 7.0
    env["MAILCLI_POP3_TIMEOUT"] = ""  # empty is unset, as for the host and port
    assert resolve_endpoint("pop3", None, ConnectionOptions(), env).timeout == DEFAULT_TIMEOUT
