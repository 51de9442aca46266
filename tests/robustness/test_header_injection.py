"""Header injection: every character Python's email package (str.splitlines) treats as a
line break, and NUL, in every value that reaches a header or the SMTP envelope, from the
command line, the config file (`from`, `domain`) and `[aliases]`: exit 65 with one line
on stderr, nothing connected, nothing sent, nothing queued."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Mailcli, Result, run_cli
from tests.servers.accounts import Account
from tests.servers.smtpd import AioSmtpd

# Every character that str.splitlines splits on (computed, not typed), plus NUL.
LINE_BREAKS = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) == 2]
FORBIDDEN = [*LINE_BREAKS, "\0"]
# The ones that got through the old CR/LF/NUL check and made the email package raise (70).
NAMED = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"]

TO = ["--to", "rcpt@example.org"]


def _toml(value: str) -> str:
    return json.dumps(value)  # JSON's escapes (\n, \f, \u0085, ...) are TOML's too


def _config(path: Path, port: int, *, from_addr: str, domain: str, alias: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"[accounts.main]\nfrom = {_toml(from_addr)}\ndomain = {_toml(domain)}\n"
        f'[accounts.main.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f"[aliases]\nroot = {_toml(alias)}\n"
    )


# field -> (config overrides, command line); V is the hostile value.
SEND_FIELDS: dict[str, Callable[[str], list[str]]] = {
    "--from": lambda v: ["--from", f"Ann{v} <ann@example.org>", *TO],
    "--to": lambda v: ["--to", f"rcpt{v}x@example.org"],
    "--cc": lambda v: ["--cc", f"Cc{v}Bcc: evil@example.org <c@example.org>", *TO],
    "--bcc": lambda v: ["--bcc", f"b{v}@example.org", *TO],
    "--reply-to": lambda v: ["--reply-to", f"R{v} <r@example.org>", *TO],
    "--subject": lambda v: ["--subject", f"hello{v}Bcc: evil@example.org", *TO],
    "--header": lambda v: ["--header", f"X-Note: a{v}Bcc: evil@example.org", *TO],
    "--header name": lambda v: ["--header", f"X{v}Note: a", *TO],
    "--envelope-from": lambda v: ["--envelope-from", f"e{v}@example.org", *TO],
    "--rcpt": lambda v: ["--rcpt", f"r{v}@example.org", *TO],
    "config from": lambda v: [*TO],
    "config domain": lambda v: [*TO],
}
SENDMAIL_FIELDS: dict[str, Callable[[str], list[str]]] = {
    "-F": lambda v: ["-F", f"Cron{v}Bcc: evil@example.org", "rcpt@example.org"],
    "-f": lambda v: ["-f", f"cron{v}@example.org", "rcpt@example.org"],
    "recipient": lambda v: [f"rcpt{v}@example.org"],
    "alias": lambda v: ["root"],
    "config from": lambda v: ["rcpt@example.org"],
    "config domain": lambda v: ["someone"],
}


def _clean_config(path: Path, port: int, field: str, value: str) -> None:
    hostile = {
        "config from": {"from_addr": f"Ann{value} <ann@example.org>"},
        "config domain": {"domain": f"exa{value}mple.org"},
        "alias": {"alias": f"admin{value}@example.org"},
    }.get(field, {})
    settings_ = {
        "from_addr": "Ann <ann@example.org>",
        "domain": "example.org",
        "alias": "admin@example.org",
    }
    _config(path, port, **{**settings_, **hostile})


def _assert_refused(result: Result, field: str, char: str) -> None:
    assert result.code == 65, (field, hex(ord(char)), result.stderr)
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1, (field, hex(ord(char)), result.stderr)
    assert "line break or NUL" in lines[0] and "header injection" in lines[0]


@pytest.fixture
def server(aiosmtpd_factory: Callable[..., AioSmtpd]) -> AioSmtpd:
    return aiosmtpd_factory()


def _queue_is_empty(home: Path) -> bool:
    queue = home / ".local" / "state" / "mailcli" / "queue"
    return not queue.exists() or not [p for p in queue.iterdir() if p.suffix == ".eml"]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    char=st.sampled_from(FORBIDDEN),
    field=st.sampled_from(sorted(SEND_FIELDS)),
    dry_run=st.booleans(),
)
def test_send_refuses_every_line_break_in_every_field(
    server: AioSmtpd, config_file: Path, char: str, field: str, dry_run: bool
) -> None:
    _clean_config(config_file, server.port, field, char)
    args = ["send", *SEND_FIELDS[field](char), "--body", "b"]
    result = run_cli([*args, "--dry-run"] if dry_run else args)
    _assert_refused(result, field, char)
    assert result.stdout == ""
    assert server.received == [] and server.commands == []  # never even connected


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(char=st.sampled_from(FORBIDDEN), field=st.sampled_from(sorted(SENDMAIL_FIELDS)))
def test_sendmail_refuses_every_line_break_in_every_field(
    server: AioSmtpd, config_file: Path, isolated_environment: Path, char: str, field: str
) -> None:
    _clean_config(config_file, server.port, field, char)
    args = ["sendmail", "-i", *SENDMAIL_FIELDS[field](char)]
    result = run_cli(args, input="Subject: s\n\nbody\n")
    _assert_refused(result, field, char)
    assert server.received == [] and server.commands == []
    assert _queue_is_empty(isolated_environment)  # refused, not deferred


@pytest.mark.parametrize("char", NAMED, ids=[hex(ord(c)) for c in NAMED])
@pytest.mark.parametrize("option", ["--subject", "--header"])
def test_named_line_break_is_65_and_the_server_gets_nothing(
    server: AioSmtpd, char: str, option: str
) -> None:
    value = f"a{char}Bcc: evil@example.org"
    value = f"X-Note: {value}" if option == "--header" else value
    plain = Mailcli(Account.smtpd(server, security="none"))
    result = plain("send", "--from", "ann@example.org", *TO, option, value, "--body", "b")
    _assert_refused(result, option, char)
    assert server.received == [] and server.commands == []
