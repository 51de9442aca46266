"""`account add` builds one typed `Account` from its options: each option lands in its
own setting (nothing swapped between SMTP and POP3), and what is not given stays unset."""

from __future__ import annotations

from pathlib import Path

from mailcli.config import Account, FetchSettings, load_config
from mailcli.endpoint import ServerSettings
from tests.helpers import run_cli

EVERY_OPTION = [
    "--from",
    "Ann <ann@example.org>",
    "--user",
    "ann",
    "--domain",
    "example.org",
    "--password-command",
    "pass show mail",
    "--smtp-host",
    "smtp.example.org",
    "--smtp-port",
    "2525",
    "--smtp-security",
    "tls",
    "--pop3-host",
    "pop.example.org",
    "--pop3-port",
    "1110",
    "--pop3-security",
    "none",
    "--fetch-to",
    "maildir:~/Mail",
]


def test_each_option_lands_in_its_own_setting(config_file: Path) -> None:
    added = run_cli(["account", "add", "home", *EVERY_OPTION, "--default"])
    assert added.code == 0, added.stderr
    config = load_config(config_file)
    assert config.default_account == "home"
    assert config.accounts["home"] == Account(
        name="home",
        from_addr="Ann <ann@example.org>",
        user="ann",
        domain="example.org",
        password_command="pass show mail",
        smtp=ServerSettings(host="smtp.example.org", port=2525, security="tls"),
        pop3=ServerSettings(host="pop.example.org", port=1110, security="none"),
        fetch=FetchSettings(to="maildir:~/Mail"),
    )


def test_options_not_given_stay_unset(config_file: Path) -> None:
    assert run_cli(["account", "add", "bare", "--pop3-host", "pop.example.org"]).code == 0
    assert load_config(config_file).accounts["bare"] == Account(
        name="bare", pop3=ServerSettings(host="pop.example.org")
    )
    assert config_file.read_text() == (
        'default_account = "bare"\n\n[accounts.bare.pop3]\nhost = "pop.example.org"\n'
    )
