"""Children (the MDA of `fetch --to mda:`, a password_command) never see a secret from
mailcli's environment: MAILCLI_PASSWORD and every other secret-bearing MAILCLI_*
variable is removed; the rest of the environment is passed on."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import run_process
from tests.servers.accounts import Account
from tests.servers.accounts import numbered_message as message
from tests.servers.fixtures import Mailbox

OTHER_SECRETS = {
    "MAILCLI_SMTP_PASSWORD": "smtp-secret-4711",
    "MAILCLI_OAUTH_TOKEN": "token-secret-4711",
    "MAILCLI_CLIENT_SECRET": "client-secret-4711",
}


def _dumped(path: Path) -> str:
    return path.read_text(errors="replace")


def test_the_mda_does_not_get_the_password(
    pop3_account: Account, mailbox: Mailbox, tmp_path: Path
) -> None:
    mailbox.drop(message(1))
    dump = tmp_path / "mda-env"
    env = {
        **os.environ,
        "MAILCLI_PASSWORD": mailbox.password,
        **OTHER_SECRETS,
        "MAILCLI_PROBE": "kept",
    }
    done = run_process(
        [
            "fetch",
            *pop3_account.args(),
            "--to",
            f"mda:env > {dump}; cat >/dev/null",
        ],
        env=env,
    )
    assert done.returncode == 0, done.stderr
    seen = _dumped(dump)
    assert "MAILCLI_PROBE=kept" in seen and "PATH=" in seen  # the rest is passed on
    assert mailbox.password not in seen and "MAILCLI_PASSWORD" not in seen
    for name, value in OTHER_SECRETS.items():
        assert name not in seen and value not in seen


def test_the_password_command_does_not_get_secrets(
    pop3_account: Account, mailbox: Mailbox, tmp_path: Path
) -> None:
    mailbox.drop(message(1))
    dump = tmp_path / "command-env"
    command = f"env > {dump}; echo {mailbox.password}"
    env = {**os.environ, **OTHER_SECRETS, "MAILCLI_PASSWORD_COMMAND": command}
    done = run_process(
        [
            "fetch",
            *pop3_account.args(),
            "--password-command",
            command,
            "--to",
            f"maildir:{tmp_path / 'Maildir'}",
        ],
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode()
    seen = _dumped(dump)
    assert "PATH=" in seen
    assert mailbox.password not in seen  # MAILCLI_PASSWORD_COMMAND held it
    for name, value in OTHER_SECRETS.items():
        assert name not in seen and value not in seen


def test_which_variables_are_secret() -> None:
    from mailcli.auth.childenv import child_environment, is_secret_variable

    secret = [
        "MAILCLI_PASSWORD",
        "MAILCLI_PASSWORD_COMMAND",
        "MAILCLI_SMTP_PASSWORD",
        "MAILCLI_POP3_PASS",
        "MAILCLI_OAUTH_TOKEN",
        "MAILCLI_CLIENT_SECRET",
        "MAILCLI_API_KEY",
        "mailcli_password",
    ]
    kept = ["MAILCLI_CONFIG", "MAILCLI_ACCOUNT", "MAILCLI_SMTP_HOST", "PATH", "PASSWORD"]
    assert all(is_secret_variable(name) for name in secret)
    assert not any(is_secret_variable(name) for name in kept)
    environ = {name: "x" for name in secret + kept}
    assert set(child_environment(environ)) == set(kept)
