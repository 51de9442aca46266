"""The config file, endpoint resolution (option > env > file > default) and `account`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mailcli.config import default_port, default_security, load_config
from mailcli.endpoint import ConnectionOptions, MailProtocol, SecurityMode, resolve_endpoint
from mailcli.errors import ConfigError
from tests.helpers import run_cli

DESIGN_EXAMPLE = """\
default_account = "work"

[accounts.work]
from = "Safeer <safeer@safeer.in>"
user = "safeer"
domain = "safeer.in"                  # qualifies bare names in sendmail mode
# password_command = "pass show mail/work"

[accounts.work.smtp]
host = "smtp.safeer.in"
port = 587
security = "starttls"                 # tls | starttls | none

[accounts.work.pop3]
host = "pop.safeer.in"
port = 995
security = "tls"

[accounts.work.fetch]
to = "maildir:~/Mail/work"
delete = false

[aliases]
root = "admin@safeer.in"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_design_example_parses(config_file: Path) -> None:
    config = load_config(write(config_file, DESIGN_EXAMPLE))
    work = config.select_account(None)
    assert work is not None and work.name == "work"
    assert work.from_addr == "Safeer <safeer@safeer.in>"
    assert (work.smtp.host, work.smtp.port, work.smtp.security) == (
        "smtp.safeer.in",
        587,
        "starttls",
    )
    assert (work.pop3.port, work.pop3.security) == (995, "tls")
    assert work.fetch.to == "maildir:~/Mail/work" and work.fetch.delete is False
    assert config.aliases == {"root": "admin@safeer.in"}


def test_missing_default_file_is_an_empty_config(isolated_environment: Path) -> None:
    config = load_config(None)
    assert not config.exists
    assert config.path == isolated_environment / ".config" / "mailcli" / "config.toml"
    assert config.select_account(None) is None


def test_missing_explicit_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[accounts.w.smtp]\nport = 'x'\n", "accounts.w.smtp.port: must be a port number"),
        ("[accounts.w.smtp]\nport = 70000\n", "accounts.w.smtp.port: must be a port number"),
        ("[accounts.w.pop3]\nsecurity = 'ssl'\n", "accounts.w.pop3.security: must be one of"),
        ("[accounts.w]\nfrm = 'x'\n", "accounts.w.frm: unknown key"),
        ("[accounts.w]\nuser = 5\n", "accounts.w.user: must be a string"),
        ("[accounts.w.fetch]\ndelete = 'yes'\n", "accounts.w.fetch.delete: must be true or false"),
        ("default_account = 'z'\n", "default_account = 'z' names no [accounts.z]"),
        ("accounts = 3\n", "accounts: must be a table"),
        ("[aliases]\nroot = 1\n", "aliases.root: must be a string"),
        ("x = [\n", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(config_file: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(config_file, text))
    assert caught.value.message.startswith(f"{config_file}: ")
    assert message in caught.value.message


def test_unknown_account_names_the_known_ones(config_file: Path) -> None:
    config = load_config(write(config_file, DESIGN_EXAMPLE))
    with pytest.raises(ConfigError, match=r"no account 'home' \(key accounts.home\); known: work"):
        config.select_account("home")


@pytest.mark.parametrize(
    ("protocol", "port", "security"),
    [
        ("smtp", 465, "tls"),
        ("smtp", 587, "starttls"),
        ("smtp", 25, "starttls"),
        ("smtp", None, "starttls"),
        ("pop3", 995, "tls"),
        ("pop3", 110, "starttls"),
    ],
)
def test_security_defaults_never_choose_none(
    protocol: MailProtocol, port: int | None, security: str
) -> None:
    assert default_security(protocol, port) == security


@pytest.mark.parametrize(
    ("protocol", "security", "port"),
    [
        ("smtp", "tls", 465),
        ("smtp", "starttls", 587),
        ("smtp", "none", 25),
        ("pop3", "tls", 995),
        ("pop3", "starttls", 110),
        ("pop3", "none", 110),
    ],
)
def test_ports_default_from_security(
    protocol: MailProtocol, security: SecurityMode, port: int
) -> None:
    assert default_port(protocol, security) == port


def test_precedence_option_over_environment_over_file(config_file: Path) -> None:
    account = load_config(write(config_file, DESIGN_EXAMPLE)).select_account(None)
    from_file = resolve_endpoint("smtp", account, ConnectionOptions(), environ={})
    assert (from_file.host, from_file.port, from_file.security, from_file.user) == (
        "smtp.safeer.in",
        587,
        "starttls",
        "safeer",
    )
    env = {
        "MAILCLI_SMTP_HOST": "env.example",
        "MAILCLI_SMTP_PORT": "2525",
        "MAILCLI_SMTP_USER": "envuser",
        "MAILCLI_PASSWORD_COMMAND": "echo x",
    }
    from_env = resolve_endpoint("smtp", account, ConnectionOptions(), environ=env)
    assert (from_env.host, from_env.port, from_env.user) == ("env.example", 2525, "envuser")
    assert from_env.password_command == "echo x"
    options = ConnectionOptions(host="opt.example", port=25, security="none", user="optuser")
    from_options = resolve_endpoint("smtp", account, options, environ=env)
    assert (from_options.host, from_options.port, from_options.security, from_options.user) == (
        "opt.example",
        25,
        "none",
        "optuser",
    )


def test_flags_alone_are_enough_and_defaults_apply() -> None:
    endpoint = resolve_endpoint("pop3", None, ConnectionOptions(host="h", port=995), environ={})
    assert (endpoint.security, endpoint.timeout, endpoint.user) == ("tls", 30.0, None)
    endpoint = resolve_endpoint("smtp", None, ConnectionOptions(host="h"), environ={})
    assert (endpoint.security, endpoint.port) == ("starttls", 587)


def test_missing_host_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="no POP3 host given") as caught:
        resolve_endpoint("pop3", None, ConnectionOptions(), environ={})
    assert "--host" in (caught.value.hint or "")
    assert "MAILCLI_POP3_HOST" in (caught.value.hint or "")


@pytest.mark.parametrize(("key", "value"), [("PORT", "abc"), ("SECURITY", "ssl")])
def test_bad_environment_values_are_config_errors(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"MAILCLI_SMTP_{key}"):
        resolve_endpoint(
            "smtp", None, ConnectionOptions(host="h"), environ={f"MAILCLI_SMTP_{key}": value}
        )


def test_account_add_list_show_remove_round_trip(config_file: Path) -> None:
    added = run_cli(
        [
            "account",
            "add",
            "home",
            "--from",
            "Ann <ann@example.org>",
            "--user",
            "ann",
            "--smtp-host",
            "smtp.example.org",
            "--pop3-host",
            "pop.example.org",
            "--pop3-port",
            "995",
        ]
    )
    assert added.code == 0, added.stderr
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    listed = run_cli(["account", "list"])
    assert listed.stdout == "home\tyes\tAnn <ann@example.org>\tsmtp.example.org\tpop.example.org\n"
    shown = json.loads(run_cli(["account", "show", "home", "--json"]).stdout)
    assert shown["pop3"]["port"] == 995 and shown["from"] == "Ann <ann@example.org>"
    removed = run_cli(["account", "remove", "home"])
    assert removed.code == 0
    assert load_config(config_file).accounts == {}


def test_account_add_keeps_the_users_comments(config_file: Path) -> None:
    write(config_file, DESIGN_EXAMPLE)
    assert run_cli(["account", "add", "home", "--smtp-host", "smtp.home.example"]).code == 0
    text = config_file.read_text()
    assert "# qualifies bare names in sendmail mode" in text
    assert '# password_command = "pass show mail/work"' in text
    config = load_config(config_file)
    assert set(config.accounts) == {"work", "home"}
    assert config.default_account == "work"
    assert run_cli(["account", "remove", "work"]).code == 0
    config = load_config(config_file)
    assert set(config.accounts) == {"home"} and config.default_account is None
    assert "[aliases]" in config_file.read_text()


def test_account_add_twice_and_remove_unknown_are_config_errors(config_file: Path) -> None:
    assert run_cli(["account", "add", "a", "--user", "u"]).code == 0
    again = run_cli(["account", "add", "a", "--user", "u"])
    assert again.code == 78 and "already exists" in again.stderr
    missing = run_cli(["account", "remove", "zz"])
    assert missing.code == 78 and "no account 'zz'" in missing.stderr


def test_account_flag_and_environment_select_an_account(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config_file, DESIGN_EXAMPLE + '\n[accounts.home]\nuser = "ann"\n')
    assert json.loads(run_cli(["account", "show", "--json"]).stdout)["name"] == "work"
    assert json.loads(run_cli(["-a", "home", "account", "show", "--json"]).stdout)["name"] == "home"
    monkeypatch.setenv("MAILCLI_ACCOUNT", "home")
    assert json.loads(run_cli(["account", "show", "--json"]).stdout)["name"] == "home"
    result = run_cli(["account", "show", "-a", "nope"])
    assert result.code == 78 and "no account 'nope'" in result.stderr


@pytest.mark.parametrize("xdg_config_home", [None, "", "/elsewhere/config"])
def test_the_cli_looks_for_the_default_file_where_load_config_reads_it(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch, xdg_config_home: str | None
) -> None:
    # The CLI skips mailcli.config when this file is absent: it must be the same file.
    from mailcli.cli.context import default_config_file
    from mailcli.config import default_config_path

    environ = {"HOME": str(isolated_environment)}
    if xdg_config_home is not None:
        environ["XDG_CONFIG_HOME"] = xdg_config_home
    monkeypatch.setenv("HOME", str(isolated_environment))
    assert default_config_file(environ) == str(default_config_path(environ))


def test_a_file_at_the_default_path_is_read_by_a_command(isolated_environment: Path) -> None:
    path = isolated_environment / ".config" / "mailcli" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[accounts.work\n")
    done = run_cli(["stat", "--host", "127.0.0.1"])
    assert done.code == 78
    assert f"{path}: not valid TOML" in done.stderr


# Nesting past Python's stack: tomllib's recursive descent raises RecursionError.
DEEP_DOCUMENTS = {
    "array": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "inline-table": "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
    "in-an-account": '[accounts.w]\nfrom = "a@b.c"\nuser = ' + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("text", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS.keys())
@pytest.mark.parametrize(
    "command", [["account", "list"], ["account", "add", "x", "--from", "x@y.z"], ["stat"]]
)
def test_a_config_nested_too_deep_is_78_naming_the_file(
    config_file: Path, text: str, command: list[str]
) -> None:
    config_file.write_text(text)
    result = run_cli(command)
    assert result.code == 78, result.stderr
    assert result.stderr.startswith(f"mailcli: error: {config_file}: not valid TOML: nested")
    assert config_file.read_text() == text  # never rewritten
