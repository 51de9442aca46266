"""The fetch line's `exit` is the status the run exits with, also for a run that got to
its end but left work undone: a message the LMTP server refused for good stays on the
server (69, `refused` counts it), a header filter that failed stops the judging (75,
`error` says why); either is logged as mail.err. With several accounts in one run
(`--all-accounts`, each in a process of its own), each account's line carries that
account's status. Real Dovecot for POP3, a scripted LMTP server for the refusal."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TrailLine, drop, parse_trail_line, read_trail, run_process
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.lmtp import LmtpScript, scripted_lmtp
from tests.servers.scripted import ScriptedServer

# numbered_message(1) as the LMTP server reads it: this one is refused, for good.
REFUSED_MESSAGE = b"Subject: n1\r\n"


@pytest.fixture
def refusing() -> Iterator[ScriptedServer]:
    """An LMTP server that takes every message but the second (550 after its dot)."""
    script = LmtpScript(refuse={REFUSED_MESSAGE: "550 5.7.1 not this one"})
    with scripted_lmtp(script) as server:
        yield server


def filled(dovecot: Dovecot) -> Mailbox:
    box = make_mailbox(dovecot, "ts")
    drop(box, range(3))
    return box


def account(name: str, box: Mailbox, dovecot: Dovecot, **fetch: str) -> str:
    """An account logging in to `box` on Dovecot (STLS, the test CA); `fetch` its keys."""
    return (
        f'[accounts.{name}]\nuser = "{box.user}"\n'
        f"password_command = {json.dumps(f'echo {box.password}')}\n"
        f'[accounts.{name}.pop3]\nhost = "127.0.0.1"\nport = {dovecot.pop3_port}\n'
        f"cafile = {json.dumps(str(dovecot.certs.ca_pem))}\n"
        f"[accounts.{name}.fetch]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fetch.items())
    )


def lmtp(server: ScriptedServer) -> str:
    return f"lmtp:127.0.0.1:{server.port}"


def fetch_once(config: Path, log: Path, *args: str) -> tuple[int, TrailLine]:
    """`fetch --log LOG ARGS` of the config's one account: its status and its line."""
    done = run_process(["--config", str(config), "fetch", "--log", str(log), *args])
    assert b"Traceback" not in done.stderr, done.stderr
    (line,) = read_trail(log)
    return done.returncode, line


def test_a_message_refused_for_good_is_69_in_the_line_too(
    dovecot: Dovecot, refusing: ScriptedServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(account("one", filled(dovecot), dovecot, to=lmtp(refusing)))
    status, line = fetch_once(config, tmp_path / "fetch.log")
    assert status == 69
    assert (line["command"], line["exit"]) == ("fetch", "69")
    assert (line["fetched"], line["refused"], line.get("error")) == ("2", "1", None)
    assert severity_of_a_rerun(config, tmp_path / "log.sock") == 19  # refused again


def test_a_failed_filter_is_75_in_the_line_with_its_reason(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    maildir = f"maildir:{tmp_path / 'Maildir'}"
    config.write_text(account("one", filled(dovecot), dovecot, to=maildir))
    status, line = fetch_once(config, tmp_path / "fetch.log", "--filter", "exit 3")
    assert status == 75
    assert line["exit"] == "75"
    assert (line["fetched"], line["refused"]) == ("0", "0")
    assert "filter" in (line.get("error") or "")
    assert severity_of_a_rerun(config, tmp_path / "log.sock", "--filter", "exit 3") == 19


def severity_of_a_rerun(config: Path, path: Path, *args: str) -> int:
    """`fetch --log syslog ARGS` again: the priority of its datagram (19 is mail.err)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(str(path))
        syslog.settimeout(30)
        env = {**os.environ, "MAILCLI_SYSLOG_SOCKET": str(path)}
        args = ("--config", str(config), "fetch", "--log", "syslog", *args)
        done = run_process(args, env=env)
        datagram = syslog.recv(65536).decode()
    found = re.match(r"<(\d+)>.* mailcli\[\d+\]: (.*)", datagram)
    assert found, datagram
    assert parse_trail_line(found[2])["exit"] == str(done.returncode)
    return int(found[1])


def test_each_accounts_line_carries_its_own_status(
    dovecot: Dovecot, refusing: ScriptedServer, tmp_path: Path
) -> None:
    log = tmp_path / "fetch.log"
    maildir = f"maildir:{tmp_path / 'Maildir'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f"log = {json.dumps(str(log))}\n"
        + account("good", filled(dovecot), dovecot, to=maildir)
        + account("refusing", filled(dovecot), dovecot, to=lmtp(refusing))
        + account("filtering", filled(dovecot), dovecot, to=maildir, filter="exit 3")
    )
    done = run_process(["--config", str(config), "fetch", "--all-accounts", "--jobs", "3"])
    assert done.returncode == 69, done.stderr  # unavailable is more severe than tempfail
    exits = {line["account"]: line["exit"] for line in read_trail(log)}
    assert exits == {"good": "0", "refusing": "69", "filtering": "75"}
