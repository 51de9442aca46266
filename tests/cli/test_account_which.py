"""`mailcli account which ADDRESS`: the account sendmail would send as ADDRESS with, and
why; the rules of the choice (exact beats pattern, then the file's order; globs;
case; sub-addresses); a pattern `from` that cannot be an address."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailcli.config import load_config
from mailcli.errors import ExitStatus
from mailcli.sendmail.choice import choose_account
from tests.helpers import run_cli

CONFIG = """\
default_account = "home"

[accounts.catchall]
from = "*@one.example"

[accounts.ann]
from = "Ann <ann@one.example>"

[accounts.second]
from = "*@one.example"

[accounts.letters]
from = "[ab]?@two.example"

[accounts.home]
from = "me@home.example"
"""


def which(address: str, *options: str) -> tuple[int, dict[str, Any]]:
    done = run_cli([*options, "account", "which", address, "--json"])
    assert done.stderr == ""
    return done.code, json.loads(done.stdout)


@pytest.mark.parametrize(
    ("address", "account", "how"),
    [
        ("ann@one.example", "ann", "exact"),  # beats the pattern written before it
        ("ANN@One.Example", "ann", "exact"),  # case ignored
        ("ann+lists@one.example", "ann", "exact"),  # a sub-address, as msmtp
        ("Ann Example <ann@one.example>", "ann", "exact"),  # a name around it
        ("bob@one.example", "catchall", "pattern"),  # the first of two patterns
        ("bob@ONE.EXAMPLE", "catchall", "pattern"),
        ("a/b@one.example", "catchall", "pattern"),  # / is an ordinary character
        ("ax@two.example", "letters", "pattern"),  # [ab] and ?
        ("cx@two.example", "home", "default"),
        ("ab1@two.example", "home", "default"),  # ? is one character
        ("bob@sub.one.example", "home", "default"),  # * stays within the address given
    ],
)
def test_which_account_and_why(config_file: Path, address: str, account: str, how: str) -> None:
    config_file.write_text(CONFIG)
    code, document = which(address)
    assert code == ExitStatus.OK
    assert (document["account"], document["how"]) == (account, how)


def test_the_reasons_in_words(config_file: Path) -> None:
    config_file.write_text(CONFIG)
    assert which("ann+x@one.example")[1]["why"] == (
        "ann+x@one.example without its +detail is from = Ann <ann@one.example>"
    )
    assert which("bob@one.example")[1]["why"] == "bob@one.example matches from = *@one.example"
    assert which("z@z.example")[1]["why"] == (
        "no account's from matches z@z.example; default_account = home"
    )
    code, document = which("z@z.example", "-a", "letters")
    assert (code, document["how"], document["why"]) == (0, "named", "named with -a letters")


def test_no_match_and_no_default_is_67(config_file: Path) -> None:
    config_file.write_text(CONFIG.replace('default_account = "home"\n', ""))
    code, document = which("z@z.example")
    assert code == ExitStatus.NOUSER
    assert document == {
        "address": "z@z.example",
        "account": None,
        "how": "none",
        "why": "no account's from matches z@z.example; no default account",
    }


def test_not_an_address_is_64(config_file: Path) -> None:
    config_file.write_text(CONFIG)
    done = run_cli(["account", "which", "root"])
    assert (done.code, done.stderr) == (
        ExitStatus.USAGE,
        "mailcli: error: 'root' is not an address (USER@DOMAIN)\n",
    )


def test_the_table_for_people(config_file: Path) -> None:
    config_file.write_text(CONFIG)
    done = run_cli(["account", "which", "bob@one.example"])
    assert done.code == 0
    assert done.stdout == (
        "address\tbob@one.example\naccount\tcatchall\nhow\tpattern\n"
        "why\tbob@one.example matches from = *@one.example\n"
    )


@pytest.mark.parametrize("value", ["Ann <*@one.example>", "*", "a@*@b", "* @x.example"])
def test_a_pattern_must_be_a_bare_address(config_file: Path, value: str) -> None:
    config_file.write_text(f'[accounts.a]\nfrom = "{value}"\n')
    done = run_cli(["account", "which", "x@one.example"])
    assert (done.code, done.stderr) == (
        ExitStatus.CONFIG,
        f"mailcli: error: {config_file}: accounts.a.from: a pattern must be a bare address, "
        "e.g. *@example.org\n",
    )


def test_choose_account_in_core(config_file: Path) -> None:
    config_file.write_text(CONFIG)
    config = load_config(config_file)
    chosen = choose_account(config, None, "ann@one.example")
    assert chosen.account is not None and chosen.account.name == "ann"
    assert choose_account(config, None, None).kind == "default"


def test_send_without_from_refuses_a_pattern(config_file: Path) -> None:
    config_file.write_text(
        '[accounts.a]\nfrom = "*@one.example"\n[accounts.a.smtp]\nhost = "127.0.0.1"\n'
    )
    done = run_cli(["send", "--to", "x@two.example", "--body", "x", "--dry-run"])
    assert done.code == ExitStatus.CONFIG
    assert done.stderr.splitlines()[0] == (
        "mailcli: error: account 'a': from = '*@one.example' is a pattern that chooses the "
        "account by sender, not an address to send as"
    )
    given = run_cli(
        ["send", "--from", "me@one.example", "--to", "x@two.example", "--body", "x", "--dry-run"]
    )
    assert given.code == 0, given.stderr
