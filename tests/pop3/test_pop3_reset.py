"""A connection reset right after login is a temporary failure (75), never a bug (70).

The first command after PASS was once written outside the session's error
translation, so a server that reset the connection between login and STAT made
`mailcli stat` die with "internal error: ConnectionResetError" (70).

The order is made certain, not left to timing: the server stops the mailcli process
(SIGSTOP) before it answers PASS, resets (SO_LINGER 0 close: a real RST), waits until
the client's kernel has taken the reset in, and only then lets the process continue. So
mailcli reads its +OK and then writes its next command into a connection already reset.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import MAILCLI
from tests.servers.accounts import Account
from tests.servers.pop3scripts import pop3_server
from tests.servers.scripted import Conn, HangUp, Script, ScriptedServer

CLIENT_START_SECONDS = 30  # bounds on waiting for a condition, never what decides a result


def reset(conn: Conn) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.file.close()
    conn.sock.close()


def established(local_port: int, remote_port: int) -> bool:
    """Is the loopback connection local_port -> remote_port still ESTABLISHED?"""
    wanted = (f":{local_port:04X}", f":{remote_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if (local[-5:], remote[-5:]) == wanted and state == "01":
            return True
    return False


def resetting_after_login(pids: queue.Queue[int]) -> Script:
    """A POP3 server that answers PASS with +OK and resets the connection at once."""

    def reset_after_login(conn: Conn, line: str) -> None:
        answer_then_reset(conn, pids.get(timeout=CLIENT_START_SECONDS))
        raise HangUp

    return pop3_server(["USER", "UIDL"], {"PASS": reset_after_login})


def answer_then_reset(conn: Conn, pid: int) -> None:
    client_port = conn.sock.getpeername()[1]
    server_port = conn.sock.getsockname()[1]
    os.kill(pid, signal.SIGSTOP)  # from here on the client runs none of its own code
    try:
        conn.send("+OK logged in")
        reset(conn)
        deadline = time.monotonic() + CLIENT_START_SECONDS
        while established(client_port, server_port) and time.monotonic() < deadline:
            time.sleep(0.001)  # the RST is on its way through the loopback device
    finally:
        os.kill(pid, signal.SIGCONT)


@contextmanager
def mailcli_process(
    server: ScriptedServer, pids: queue.Queue[int], *command: str
) -> Iterator[subprocess.Popen[bytes]]:
    account = Account.scripted(server, "alice", "Secret-pw")
    args = [*command, "--timeout", "10", *account.args()]
    env = {**os.environ, **account.env()}
    with subprocess.Popen(
        [*MAILCLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        pids.put(process.pid)
        yield process


@pytest.mark.parametrize(
    "command",
    [["stat"], ["list"], ["fetch", "--to", "maildir:{tmp}/Maildir"]],
    ids=lambda command: command[0],
)
def test_connection_reset_after_login_is_75(command: list[str], tmp_path: Path) -> None:
    pids: queue.Queue[int] = queue.Queue()
    args = [part.format(tmp=tmp_path) for part in command]
    script = resetting_after_login(pids)
    with (
        ScriptedServer(script) as server,
        mailcli_process(server, pids, *args) as process,
    ):
        _, stderr_bytes = process.communicate(timeout=60)
    stderr = stderr_bytes.decode()
    assert "PASS Secret-pw" in server.received  # the reset came after a successful login
    assert process.returncode == 75, stderr
    assert "closed the connection" in stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
