"""`mailcli password where` names the source the other commands would use: every form
of it (USER@HOST, the account's logins, --user/--host) asks the one resolver of the
password command (option > MAILCLI_PASSWORD_COMMAND > the account's; "" is none)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailcli.auth.credentials import SERVICE
from mailcli.config import load_config
from mailcli.endpoint import ConnectionOptions, resolve_endpoint
from tests.helpers import MemoryKeyring, run_cli, run_process
from tests.servers.keyring_service import SecretService

KEY = "ann@s.example"
CONFIG = (
    '[accounts.w]\nuser = "ann"\npassword_command = "echo from-account"\n'
    '[accounts.w.smtp]\nhost = "s.example"\n[accounts.w.pop3]\nhost = "s.example"\n'
)
FORMS = {
    "key": ["password", "where", KEY],
    "account": ["password", "where"],
    "user-host": ["password", "where", "--user", "ann", "--host", "s.example"],
}
# MAILCLI_PASSWORD_COMMAND: unset, exported empty (none: clears the account's), a command.
ENVIRONMENTS = {"unset": None, "empty": "", "set": "echo from-env"}


def where(args: list[str], env: dict[str, str | None]) -> dict[str, Any]:
    done = run_cli([*args, "--json"], env=env)
    assert done.code == 0, done.stderr
    logins: list[dict[str, Any]] = json.loads(done.stdout)["logins"]
    assert [login["key"] for login in logins] == [KEY]
    return logins[0]


def password_command_step(login: dict[str, Any]) -> bool:
    step = next(s for s in login["sources"] if s["name"] == "password_command")
    return bool(step["available"])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_form_agrees_with_the_endpoint_resolver(
    config_file: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
    environment: str,
) -> None:
    config_file.write_text(CONFIG)
    memory_keyring.set_password(SERVICE, KEY, "stored")
    value = ENVIRONMENTS[environment]
    if value is not None:
        monkeypatch.setenv("MAILCLI_PASSWORD_COMMAND", value)
    account = load_config(config_file).select_account(None)
    used = resolve_endpoint("smtp", account, ConnectionOptions()).password_command
    login = where(FORMS[form], {"MAILCLI_PASSWORD_COMMAND": value})
    assert password_command_step(login) == bool(used)
    assert login["answer"] == ("password_command" if used else "keyring")


def test_an_empty_variable_clears_the_accounts_command_in_every_form(
    config_file: Path, memory_keyring: MemoryKeyring
) -> None:
    config_file.write_text(CONFIG)
    memory_keyring.set_password(SERVICE, KEY, "stored")
    env: dict[str, str | None] = {"MAILCLI_PASSWORD_COMMAND": ""}
    answers = {form: where(args, env)["answer"] for form, args in FORMS.items()}
    assert answers == {"key": "keyring", "account": "keyring", "user-host": "keyring"}


def test_the_real_keyring_answers_when_the_variable_is_empty(
    secret_service: SecretService, config_file: Path
) -> None:
    """A real process against gnome-keyring: the key form and the account form agree."""
    config_file.write_text(CONFIG)
    env = secret_service.subprocess_env()
    env.update(MAILCLI_CONFIG=str(config_file), MAILCLI_PASSWORD_COMMAND="")
    stored = run_process(["password", "set", KEY], env=env, input=b"kr-where-1\n")
    assert stored.returncode == 0, stored.stderr
    try:
        for args in FORMS.values():
            done = run_process([*args, "--json"], env=env)
            assert done.returncode == 0, done.stderr
            login = json.loads(done.stdout)["logins"][0]
            assert (login["key"], login["answer"]) == (KEY, "keyring"), args
            assert not password_command_step(login)
    finally:
        run_process(["password", "delete", KEY], env=env)
