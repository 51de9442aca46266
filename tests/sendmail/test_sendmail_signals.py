"""sendmail stopped by a signal while it holds a message: the message is queued, not lost.

Cron, a shutdown or a supervisor may send SIGTERM or SIGHUP while `sendmail` waits for a
server. The message exists nowhere else (its caller already handed it over), so the stop
queues it (exit 0 with the queued notice, as for any temporary failure) and `queue run`
delivers it once. The server here accepts the connection and says nothing; the signal is
sent once the server has the connection, so no timing decides where it lands.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.helpers import MAILCLI
from tests.servers import slow
from tests.servers.scripted import Conn, ScriptedServer
from tests.servers.smtpd import AioSmtpd

SAFETY = 60  # seconds: only a guard against a hang, never a measure of speed
MESSAGE = b"From: cron@example.test\nTo: ops@example.test\nSubject: stopped\n\nkept\n"


def silent_after_connect(connected: threading.Event) -> Callable[[Conn], None]:
    def script(conn: Conn) -> None:
        connected.set()
        slow.misbehave(conn, "silent", b"")

    return script


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_while_sendmail_waits_for_the_server_queues_the_message(
    signum: signal.Signals, aiosmtpd_factory: Callable[..., AioSmtpd], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    connected = threading.Event()
    with ScriptedServer(silent_after_connect(connected)) as server:
        env = cp.base_env(
            home,
            MAILCLI_SMTP_HOST="127.0.0.1",
            MAILCLI_SMTP_PORT=str(server.port),
            MAILCLI_SMTP_SECURITY="none",
        )
        sendmail = subprocess.Popen(
            [*MAILCLI, "sendmail", "-i", "ops@example.test"],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert sendmail.stdin is not None
        sendmail.stdin.write(MESSAGE)
        sendmail.stdin.close()
        assert connected.wait(SAFETY), "sendmail never connected"
        sendmail.send_signal(signum)
        assert sendmail.stderr is not None
        sendmail.wait(timeout=SAFETY)
        stderr = sendmail.stderr.read()
    assert sendmail.returncode == 0, stderr
    assert stderr.decode().startswith("mailcli: queued: "), stderr
    assert b"Traceback" not in stderr

    up = aiosmtpd_factory()
    env.update(MAILCLI_SMTP_PORT=str(up.port))
    ran = cp.run(["queue", "run"], env)
    assert ran.code == 0, ran.stderr
    assert [r.rcpt_tos for r in up.received] == [("ops@example.test",)]
    assert b"kept" in up.received[0].data
