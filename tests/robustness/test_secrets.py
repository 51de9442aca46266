"""Secret hygiene: the password (and its base64 forms) appears in no process's argv, no
transcript, no --debug output, no exception message, no file mailcli writes; files that
may carry mail are 0600 and folders 0700."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Mailcli, run_cli
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd

SECRET = "S3cret-Hygiene-pw"


def forms(secret: str, user: str) -> list[str]:
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
        base64.b64encode(f"{user}\0{user}\0{secret}".encode()).decode(),
    ]


def assert_nowhere(text: str, secret: str, user: str) -> None:
    for form in forms(secret, user):
        assert form not in text


def all_files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("auth", ["plain", "login"])
def test_smtp_trace_and_debug_of_a_failed_login(
    aiosmtpd_factory: Callable[..., AioSmtpd], certs: Certs, auth: str
) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users={"alice": "right"})
    wrong = Mailcli(Account.smtpd(server, "alice", SECRET, cafile=certs.ca_pem))
    message = ["--from", "a@x.test", "--to", "b@x.test", "--body", "x"]
    result = wrong("--debug", "send", "--trace", "--trace-time", "--auth", auth, *message)
    assert result.code == 77
    assert "Traceback" in result.stderr  # --debug: the traceback and its messages...
    assert_nowhere(result.stdout + result.stderr, SECRET, "alice")  # ...hold no secret


@pytest.mark.parametrize("auth", ["user", "apop", "plain"])
def test_pop3_trace_and_debug_of_a_failed_login(
    pop3_account: Account, mailbox: Mailbox, auth: str
) -> None:
    wrong = Mailcli(replace(pop3_account, password=SECRET))
    result = wrong("--debug", "stat", "--trace", "--auth", auth)
    assert result.code == 77
    assert_nowhere(result.stdout + result.stderr, SECRET, mailbox.user)


def test_no_secret_in_any_argv_while_fetching(
    pop3_account: Account, mailbox: Mailbox, tmp_path: Path
) -> None:
    """The MDA runs while mailcli is logged in: it records every process's argv."""
    mailbox.drop(b"Subject: x\n\nhello\n")
    secret_file = tmp_path / "pw"
    secret_file.write_text(mailbox.password + "\n")
    argv_dump = tmp_path / "argv"
    mda = f"ps -eww -o args > {argv_dump}; cat > /dev/null"  # ww: never cut at $COLUMNS
    no_password_given = Mailcli(replace(pop3_account, password=None), process=True)
    done = no_password_given(
        "fetch", "--to", f"mda:{mda}", "--password-command", f"cat {secret_file}"
    )
    assert done.code == 0, done.stderr
    listing = argv_dump.read_text()
    assert "mailcli" in listing  # the listing did see mailcli itself
    assert_nowhere(listing, mailbox.password, mailbox.user)


def test_no_secret_in_files_mailcli_writes_and_their_modes(
    dovecot: Dovecot, certs: Certs, mailbox: Mailbox, isolated_environment: Path, tmp_path: Path
) -> None:
    home = isolated_environment
    env = {**os.environ, "MAILCLI_PASSWORD": mailbox.password}
    add = [
        "account",
        "add",
        "box",
        "--from",
        mailbox.address,
        "--user",
        mailbox.user,
        "--domain",
        "example.test",
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        str(free_port()),
        "--pop3-host",
        "127.0.0.1",
        "--pop3-port",
        str(dovecot.pop3_port),
    ]
    assert run_cli(add).code == 0
    dovecot.drop_message(mailbox.user, b"Subject: x\n\nhello\n")
    common = ["--cafile", str(certs.ca_pem)]
    for command in (
        ["fetch", *common],
        ["fetch", "--to", f"mbox:{home}/mail/inbox", "--all", *common],
    ):
        done = subprocess.run([*MAILCLI, *command], env=env, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
    queued = subprocess.run(
        [*MAILCLI, "sendmail", "-i", "root"],
        input=b"Subject: q\n\nq\n",
        env=env,
        capture_output=True,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr  # nothing listens on the SMTP port: queued
    assert_nowhere(all_files_text(home), mailbox.password, mailbox.user)
    private = [
        home / "Maildir",
        home / ".local/state/mailcli/fetch",
        home / ".local/state/mailcli/queue",
        home / "mail",
    ]
    for folder in private:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in [
        *home.joinpath("Maildir").rglob("*"),
        home / "mail/inbox",
        *home.joinpath(".local/state/mailcli").rglob("*"),
        home / ".config/mailcli/config.toml",
    ]:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        elif path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
