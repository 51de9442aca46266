"""mutt and neomutt (batch mode), git send-email and s-nail with mailcli as their
sendmail, against an SMTP server (aiosmtpd: STARTTLS and AUTH required) that is down,
then up, and one that is up from the start.

A message mailcli has durably queued is the sendmail's job done: the program must tell
its user "sent" (mutt and neomutt exit 0 without "Could not send", git send-email
"Result: OK", s-nail exit 0 and no dead.letter). Told "not sent", a user sends again,
and `queue run` then delivers both. In both cases the program must report success, the
server ends with exactly one copy (after `queue run` when it was down), and the copy's
Subject and body are the ones composed.

Each program is told where mailcli's `sendmail` link is; one more test leaves each at
its built-in `/usr/sbin/sendmail`, which a private mount namespace binds to mailcli.
And the other way round: with the server down and the queue unwritable, mailcli has
not taken the message, and each program must say "not sent".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_process
from tests.servers import NEEDS, require
from tests.servers.callers import (
    CALLERS,
    SYSTEM_SENDMAIL,
    Caller,
    Letter,
    system_sendmail_wrapper,
)
from tests.servers.certs import Certs
from tests.servers.smtpd import AioSmtpd

USER, PASSWORD = "me", "me-pw"
MAILCLI = Path(sys.executable).with_name("mailcli")


@pytest.fixture
def server(certs: Certs) -> Iterator[AioSmtpd]:
    """A submission server with its port chosen but not yet listening: down until the
    test calls ``start()``."""
    smtpd = AioSmtpd(
        tls_context=certs.server_context(), require_starttls=True, users={USER: PASSWORD}
    )
    yield smtpd
    smtpd.stop()


@pytest.fixture
def sendmail_link(tmp_path: Path, config_file: Path, server: AioSmtpd, certs: Certs) -> Path:
    """mailcli's sendmail entry (a link named `sendmail`), with an account on ``server``."""
    config_file.write_text(f"""\
default_account = "me"

[accounts.me]
from = "Me <{USER}@example.test>"
user = "{USER}"
domain = "example.test"
password_command = "echo {PASSWORD}"

[accounts.me.smtp]
host = "127.0.0.1"
port = {server.port}
security = "starttls"
cafile = "{certs.ca_pem}"
""")
    link = tmp_path / "bin" / "sendmail"
    link.parent.mkdir()
    link.symlink_to(MAILCLI)
    return link


def _caller_class(request: pytest.FixtureRequest) -> type[Caller]:
    caller_class = CALLERS[request.param]
    reason = caller_class.missing()
    if reason is not None:  # as tests.servers.require: a skip here, a failure under CI
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
        pytest.skip(reason)
    return caller_class


@pytest.fixture(params=sorted(CALLERS))
def caller(request: pytest.FixtureRequest, tmp_path: Path, sendmail_link: Path) -> Caller:
    """Each program, told that its sendmail is ``sendmail_link``."""
    return _caller_class(request)(tmp_path / "caller", sendmail_link)


@pytest.fixture(params=sorted(CALLERS))
def default_caller(request: pytest.FixtureRequest, tmp_path: Path, sendmail_link: Path) -> Caller:
    """Each program at its built-in sendmail path (``sendmail_link`` still configures
    mailcli's account)."""
    return _caller_class(request)(tmp_path / "caller", None)


def letter_from(caller: Caller) -> Letter:
    # A lone "." and a line starting with dots: each program passes -i (or -oi), so
    # neither may end the message or lose a dot on the way.
    body = f"Hello from {caller.name}.\n.\n..two dots, one line\nlast line\n"
    return Letter(
        sender="Caller User <caller@example.test>",
        recipient="friend@example.test",
        subject=f"Sent by {caller.name} through mailcli",
        body=body,
    )


def queued() -> list[dict[str, object]]:
    """The account's sendmail queue, as `mailcli queue list --json` shows it."""
    done = run_process(["queue", "list", "--json"])
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, object]] = json.loads(done.stdout)["queue"]
    return entries


def queue_run() -> subprocess.CompletedProcess[bytes]:
    return run_process(["queue", "run"])


def told(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def assert_delivered_once(server: AioSmtpd, caller: Caller, letter: Letter) -> None:
    """Exactly one copy at the server, for the recipient, with the letter's Subject and
    body bytes."""
    assert len(server.received) == 1, [r.data[:200] for r in server.received]
    (received,) = server.received
    assert received.rcpt_tos == (letter.recipient,)
    head, _, body = received.data.replace(b"\r\n", b"\n").partition(b"\n\n")
    subject = f"\nSubject: {caller.subject_prefix}{letter.subject}\n".encode()
    assert subject in b"\n" + head + b"\n", head
    if caller.extends_body:
        assert body.startswith(letter.body.encode()), body
    else:
        assert body == letter.body.encode(), body


def test_server_down_caller_told_sent_then_queue_run_delivers_once(
    caller: Caller, server: AioSmtpd
) -> None:
    letter = letter_from(caller)
    done = caller.send(letter)
    assert caller.complaint(done) is None, told(done)
    (entry,) = queued()
    assert f"queued: {entry['id']}" in done.stderr, told(done)  # the user still learns it

    server.start()
    ran = queue_run()
    assert ran.returncode == 0, ran.stderr
    assert queued() == []
    assert_delivered_once(server, caller, letter)
    assert queue_run().returncode == 0  # nothing left to send twice
    assert len(server.received) == 1


def test_server_up_caller_told_sent_and_delivered_once(caller: Caller, server: AioSmtpd) -> None:
    server.start()
    letter = letter_from(caller)
    done = caller.send(letter)
    assert caller.complaint(done) is None, told(done)
    assert "queued" not in done.stderr, told(done)
    assert_delivered_once(server, caller, letter)
    assert queued() == []


def test_as_the_system_sendmail_server_down_then_up(
    default_caller: Caller, server: AioSmtpd
) -> None:
    # Postfix provides the /usr/sbin/sendmail to bind over (in the namespace only).
    require("unshare", "mount", *NEEDS["postfix"], need_root=True)
    machines_sendmail = SYSTEM_SENDMAIL.stat()
    letter = letter_from(default_caller)
    done = default_caller.send(letter, wrapper=system_sendmail_wrapper(MAILCLI))
    assert default_caller.complaint(done) is None, told(done)
    (entry,) = queued()
    assert f"queued: {entry['id']}" in done.stderr, told(done)
    assert SYSTEM_SENDMAIL.stat() == machines_sendmail  # bound in the namespace only

    server.start()
    assert queue_run().returncode == 0
    assert_delivered_once(server, default_caller, letter)


def test_server_down_and_queue_unwritable_caller_told_not_sent(
    caller: Caller, server: AioSmtpd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other half of the contract: a message mailcli could neither deliver nor queue
    # stays the caller's, which must say so (s-nail keeps it in its dead.letter).
    blocker = tmp_path / "not-a-directory"
    blocker.touch()
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker / "state"))
    done = caller.send(letter_from(caller))
    assert done.returncode != 0 and caller.complaint(done) is not None, told(done)
    assert "mailcli: error: cannot write to the queue" in done.stderr, told(done)
