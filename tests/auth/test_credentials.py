"""The credential chain: environment, password command, keyring, prompt, exit 78."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import pytest

from mailcli.auth.credentials import SERVICE, Secret, describe_sources, get_password
from mailcli.errors import CredentialsError
from tests.helpers import LockedKeyring, MemoryKeyring, run_cli, run_process

KEY = "alice@mail.example.test"


class ScriptedPrompter:
    def __init__(self, answer: str, store: bool) -> None:
        self.answer, self.store, self.asked = answer, store, []  # type: ignore[var-annotated]

    def ask_password(self, key: str) -> str:
        self.asked.append(key)
        return self.answer

    def offer_to_store(self, key: str) -> bool:
        return self.store


def test_environment_variable_comes_first(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, KEY, "from-keyring")
    secret = get_password(
        KEY, password_command="echo from-command", environ={"MAILCLI_PASSWORD": "from-env"}
    )
    assert (secret.value, secret.source) == ("from-env", "environment")


def test_password_command_gives_its_first_line(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, KEY, "from-keyring")
    secret = get_password(KEY, password_command="printf 'p@ss word\\nsecond line\\n'", environ={})
    assert (secret.value, secret.source) == ("p@ss word", "password_command")


@pytest.mark.parametrize(
    ("command", "message"),
    [("exit 3", "exited with status 3"), ("true", "printed nothing")],
)
def test_failing_password_command_is_a_credentials_error(command: str, message: str) -> None:
    with pytest.raises(CredentialsError, match=message) as caught:
        get_password(KEY, password_command=command, environ={})
    assert caught.value.exit_status == 78


def test_keyring_is_third(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, KEY, "from-keyring")
    secret = get_password(KEY, password_command=None, environ={})
    assert (secret.value, secret.source) == ("from-keyring", "keyring")


def test_prompt_when_a_prompter_is_given_and_offer_to_store(memory_keyring: MemoryKeyring) -> None:
    prompter = ScriptedPrompter("typed", store=True)
    secret = get_password(KEY, password_command=None, environ={}, prompter=prompter)
    assert (secret.value, secret.source) == ("typed", "prompt")
    assert prompter.asked == [KEY]
    assert memory_keyring.get_password(SERVICE, KEY) == "typed"


def test_prompt_answer_not_stored_when_declined(memory_keyring: MemoryKeyring) -> None:
    get_password(KEY, password_command=None, environ={}, prompter=ScriptedPrompter("t", False))
    assert memory_keyring.entries == {}


def test_nothing_anywhere_names_every_way_to_provide_one(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(CredentialsError) as caught:
        get_password(KEY, password_command=None, environ={})
    text = f"{caught.value.message} {caught.value.hint}"
    for way in ("MAILCLI_PASSWORD", "password_command", f"mailcli password set {KEY}"):
        assert way in text
    assert caught.value.exit_status == 78


def test_locked_keyring_gives_its_reason_and_the_chain_goes_on() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        with pytest.raises(CredentialsError, match=r"\(keyring unavailable: the keyring is locked"):
            get_password(KEY, password_command=None, environ={})
        prompted = get_password(
            KEY, password_command=None, environ={}, prompter=ScriptedPrompter("typed", store=True)
        )
        assert prompted.value == "typed"  # a locked keyring does not stop the prompt
    finally:
        keyring.set_keyring(previous)


def test_secret_repr_never_shows_the_value() -> None:
    assert "hunter2" not in repr(Secret("hunter2", "environment"))


def test_where_reports_each_source_and_why(memory_keyring: MemoryKeyring) -> None:
    statuses = describe_sources(KEY, password_command=None, environ={}, interactive=False)
    assert [s.name for s in statuses] == [
        "MAILCLI_PASSWORD",
        "password_command",
        "keyring",
        "netrc",
        "prompt",
    ]
    assert not any(s.available for s in statuses)
    assert "no entry" in statuses[2].detail
    memory_keyring.set_password(SERVICE, KEY, "x")
    statuses = describe_sources(KEY, password_command="pass x", environ={}, interactive=True)
    assert [s.available for s in statuses] == [False, True, True, False, True]


def test_password_set_from_stdin_where_and_delete(memory_keyring: MemoryKeyring) -> None:
    stored = run_cli(["password", "set", KEY], input="s3cret\n")
    assert stored.code == 0, stored.stderr
    assert memory_keyring.get_password(SERVICE, KEY) == "s3cret"
    assert "s3cret" not in stored.stdout + stored.stderr
    where = json.loads(run_cli(["password", "where", KEY, "--json"]).stdout)
    assert where["logins"][0]["answer"] == "keyring"
    assert "s3cret" not in json.dumps(where)
    deleted = run_cli(["password", "delete", KEY])
    assert deleted.code == 0 and f"deleted {KEY}" in deleted.stderr
    assert memory_keyring.entries == {}


def test_password_set_for_the_accounts_logins(
    config_file: Path, memory_keyring: MemoryKeyring
) -> None:
    config_file.write_text(
        '[accounts.w]\nuser = "ann"\n[accounts.w.smtp]\nhost = "s.example"\n'
        '[accounts.w.pop3]\nhost = "p.example"\n'
    )
    assert run_cli(["password", "set"], input="pw\n").code == 0
    assert memory_keyring.entries == {
        (SERVICE, "ann@s.example"): "pw",
        (SERVICE, "ann@p.example"): "pw",
    }


def test_password_set_with_nothing_to_name_is_a_usage_error() -> None:
    result = run_cli(["password", "set"], input="pw\n")
    assert result.code == 64 and "USER@HOST" in result.stderr


def test_password_set_empty_is_refused(memory_keyring: MemoryKeyring) -> None:
    assert run_cli(["password", "set", KEY], input="\n").code == 64
    assert memory_keyring.entries == {}


def test_no_keyring_backend_in_a_real_process_is_explained(tmp_path: Path) -> None:
    """No D-Bus and keyring's `fail` backend (the conftest's default for children)."""
    done = run_process(["password", "set", KEY], input=b"pw\n")
    assert done.returncode == 78
    err = done.stderr.decode()
    assert err.startswith(f"mailcli: error: cannot store the password for {KEY}: no keyring")
    assert "Traceback" not in err
    where = run_process(["password", "where", KEY]).stdout.decode()
    assert "keyring\tno\tno keyring backend found" in where
