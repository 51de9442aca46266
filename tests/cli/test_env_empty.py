"""`MAILCLI_*` variables set to the empty string.

Where "none" is a meaningful value (the user, the password command) an empty variable
means none: it clears what the config file says. Where it is not (host, port, security:
"none" is no host, and an empty string must never select cleartext) an empty variable is
unset and the next source applies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailcli.config import load_config
from mailcli.endpoint import ConnectionOptions, Endpoint, MailProtocol, resolve_endpoint
from tests.helpers import run_cli
from tests.servers.pop3scripts import minimal_server
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]


def write_account(config_file: Path, *, smtp_port: int = 587, pop3_port: int = 110) -> Path:
    config_file.write_text(
        '[accounts.work]\nfrom = "alice@example.test"\nuser = "alice"\n'
        'password_command = "echo secret"\n'
        f'[accounts.work.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        f'[accounts.work.pop3]\nhost = "127.0.0.1"\nport = {pop3_port}\nsecurity = "none"\n'
    )
    return config_file


def send(env: dict[str, str]) -> tuple[int, str]:
    result = run_cli(["send", "--to", "bob@example.test", "--body", "hi"], env=env)
    return result.code, result.stderr


@pytest.mark.parametrize("variable", ["MAILCLI_SMTP_USER", "MAILCLI_USER"])
def test_empty_user_variable_sends_without_auth(
    aiosmtpd_factory: Factory, config_file: Path, variable: str
) -> None:
    server = aiosmtpd_factory()  # no users: AUTH is not offered
    write_account(config_file, smtp_port=server.port)
    code, stderr = send({})
    assert code == 69 and "offers no AUTH" in stderr  # the account's user asks for AUTH
    code, stderr = send({variable: ""})
    assert code == 0, stderr
    assert not server.saw_command("AUTH")
    assert len(server.received) == 1 and server.received[0].login is None


def test_empty_pop3_user_is_a_config_error_naming_the_variable(config_file: Path) -> None:
    with ScriptedServer(minimal_server(["USER"])) as server:
        write_account(config_file, pop3_port=server.port)
        result = run_cli(["stat"], env={"MAILCLI_POP3_USER": ""})
    assert result.code == 78, result.stderr
    assert "MAILCLI_POP3_USER" in result.stderr
    assert not any(line.upper().startswith(("USER", "PASS")) for line in server.received)


def resolve(
    config_file: Path, environ: dict[str, str], protocol: MailProtocol = "smtp"
) -> Endpoint:
    account = load_config(write_account(config_file)).select_account(None)
    return resolve_endpoint(protocol, account, ConnectionOptions(), environ=environ)


def test_empty_password_command_is_none(config_file: Path) -> None:
    assert resolve(config_file, {}).password_command == "echo secret"
    cleared = resolve(config_file, {"MAILCLI_PASSWORD_COMMAND": ""})
    assert cleared.password_command is None


def test_empty_user_beats_the_file_at_its_own_rank(config_file: Path) -> None:
    assert resolve(config_file, {"MAILCLI_SMTP_USER": ""}).user is None
    assert resolve(config_file, {"MAILCLI_POP3_USER": ""}).user == "alice"
    assert resolve(config_file, {"MAILCLI_USER": ""}, "pop3").user is None
    # A non-empty protocol variable still wins over an empty generic one.
    both = {"MAILCLI_USER": "", "MAILCLI_SMTP_USER": "bob"}
    assert resolve(config_file, both).user == "bob"


def test_empty_user_option_is_none_too(config_file: Path) -> None:
    account = load_config(write_account(config_file)).select_account(None)
    endpoint = resolve_endpoint("smtp", account, ConnectionOptions(user=""), environ={})
    assert endpoint.user is None


@pytest.mark.parametrize("key", ["HOST", "PORT", "SECURITY"])
def test_empty_host_port_security_are_unset(config_file: Path, key: str) -> None:
    endpoint = resolve(config_file, {f"MAILCLI_SMTP_{key}": ""})
    assert (endpoint.host, endpoint.port, endpoint.security) == ("127.0.0.1", 587, "none")
