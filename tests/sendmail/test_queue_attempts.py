"""The queue's bookkeeping and `queue run`'s stopping rule.

* The delivery tried when sendmail was called is attempt 1: `queue list` shows 1 attempt
  and its time for an entry whose first delivery failed (it showed 0 and no time).
* A temporary failure of the session (connection, TLS, AUTH, a 4xx to MAIL FROM or DATA)
  stops the run for that account: the next entries are not tried against a server that
  just said "later" (one MAIL FROM for three entries). A 4xx to one recipient says
  nothing about other messages: the run goes on and delivers the next entry.
"""

from __future__ import annotations

import json

from tests.helpers import run_cli
from tests.servers.ports import free_port
from tests.servers.scripted import Conn, ScriptedServer

LATER = "later@example.test"  # the scripted server answers 450 to this recipient


def env(port: int) -> dict[str, str]:
    return {
        "MAILCLI_SMTP_HOST": "127.0.0.1",
        "MAILCLI_SMTP_PORT": str(port),
        "MAILCLI_SMTP_SECURITY": "none",
    }


def enqueue(recipient: str, subject: str) -> None:
    message = f"From: cron@example.test\nTo: {recipient}\nSubject: {subject}\n\nbody\n"
    done = run_cli(["sendmail", "-i", recipient], env=env(free_port()), input=message)
    assert done.code == 0, done.stderr  # nothing listens there: queued


def queue() -> list[dict]:  # type: ignore[type-arg]
    listed = run_cli(["queue", "list", "--json"])
    assert listed.code == 0, listed.stderr
    return json.loads(listed.stdout)["queue"]  # type: ignore[no-any-return]


def test_the_failed_first_delivery_is_attempt_one() -> None:
    enqueue("someone@example.test", "first")
    (entry,) = queue()
    assert entry["attempts"] == 1
    assert entry["last_attempt"] is not None and entry["last_attempt"] >= entry["created"]
    assert "refused" in entry["last_error"]


def smtp_server(mail_reply: str, seen: list[str]) -> ScriptedServer:
    """MAIL gets `mail_reply`; RCPT to LATER gets 450, others 250; DATA is accepted."""

    def script(conn: Conn) -> None:
        conn.send("220 scripted ESMTP")
        while line := conn.recv_line():
            verb = line.split()[0].upper()
            seen.append(line)
            if verb == "EHLO":
                conn.send("250 scripted")
            elif verb == "MAIL":
                conn.send(mail_reply)
            elif verb == "RCPT":
                conn.send("450 4.2.0 mailbox busy" if LATER in line else "250 ok")
            elif verb == "DATA":
                conn.send("354 go on")
                while conn.file.readline(65536) not in (b".\r\n", b""):
                    pass
                conn.send("250 2.0.0 queued")
            elif verb == "RSET":
                conn.send("250 ok")
            else:
                conn.send("221 bye")
                return

    return ScriptedServer(script)


def test_a_4xx_to_mail_from_stops_the_run_for_the_account() -> None:
    for number in range(3):
        enqueue(f"r{number}@example.test", f"message {number}")
    seen: list[str] = []
    with smtp_server("451 4.3.0 try again later", seen) as server:
        ran = run_cli(["queue", "run"], env=env(server.port))
    assert ran.code == 75, ran.stderr
    assert len([line for line in seen if line.upper().startswith("MAIL")]) == 1
    assert [entry["attempts"] for entry in queue()] == [2, 2, 2]


def test_a_4xx_to_one_recipient_does_not_stop_the_run() -> None:
    enqueue(LATER, "deferred")
    enqueue("now@example.test", "delivered")
    seen: list[str] = []
    with smtp_server("250 ok", seen) as server:
        ran = run_cli(["queue", "run"], env=env(server.port))
    assert ran.code == 75, ran.stderr
    assert len([line for line in seen if line.upper().startswith("MAIL")]) == 2
    assert "\tdelivered\t250 2.0.0 queued" in ran.stdout
    (left,) = queue()
    assert left["recipients"] == [LATER] and left["attempts"] == 2
    assert "450 4.2.0" in left["last_error"]
