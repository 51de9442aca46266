"""The SOCKS5 proxy URL (transport.socks.parse_proxy_url) and a peer that is no SOCKS5
proxy: what a typo in the proxy setting gets, and that the password never shows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailcli.errors import ConfigError
from mailcli.transport.socks import ProxyURL, parse_proxy_url, shown_proxy_url
from tests.helpers import Mailcli, run_cli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.ports import HOST
from tests.servers.postfix import Postfix
from tests.servers.scripted import Conn, Script, ScriptedServer


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("socks5://proxy.test", ProxyURL(False, "proxy.test", 1080)),
        ("SOCKS5H://proxy.test:9050/", ProxyURL(True, "proxy.test", 9050)),
        ("socks5://[::1]:1081", ProxyURL(False, "::1", 1081)),
        ("socks5://u%40x:p%3Aw%25@h:1", ProxyURL(False, "h", 1, "u@x", "p:w%")),
        ("socks5://user@h:2", ProxyURL(False, "h", 2, "user", None)),
        ("socks5://us:er:pa@ss@h:3", ProxyURL(False, "h", 3, "us", "er:pa@ss")),
    ],
)
def test_urls(text: str, parsed: ProxyURL) -> None:
    assert parse_proxy_url(text) == parsed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("http://proxy.test:3128", "must start with socks5:// or socks5h://"),
        ("socks4://proxy.test", "must start with socks5:// or socks5h://"),
        ("proxy.test:1080", "must start with socks5:// or socks5h://"),
        ("socks5://:1080", "names no proxy host"),
        ("socks5://h:0", "'0' is not a port number"),
        ("socks5://h:70000", "'70000' is not a port number"),
        ("socks5://[::1", "write an IPv6 address as [ADDRESS]:PORT"),
        ("socks5://[::1]1080", "write an IPv6 address as [ADDRESS]:PORT"),
        ("socks5://" + "u" * 256 + ":p@h", "user name is longer than SOCKS5 allows"),
        ("socks5://u:" + "p" * 256 + "@h", "password is longer than SOCKS5 allows"),
    ],
)
def test_bad_urls_are_78(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_proxy_url(text)
    assert problem in raised.value.message
    assert "p" * 256 not in raised.value.message


def test_the_password_is_not_in_the_repr() -> None:
    proxy = parse_proxy_url("socks5h://me:Hidden-9@h:1")
    assert repr(proxy) == "ProxyURL(socks5h://me:***@h:1)"
    assert "Hidden-9" not in str((proxy,))
    assert shown_proxy_url("socks5h://me:Hidden-9@h:1") == "socks5h://me:***@h:1"
    assert shown_proxy_url("socks5://[::1]") == "socks5://[::1]:1080"
    assert shown_proxy_url("env") == "env"
    assert shown_proxy_url("socks5://me:Hidden-9@h:bad") == "(set)"


def test_a_peer_that_is_no_socks5_proxy_is_69(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    """--proxy pointing at Postfix's port 25: its 220 greeting is no SOCKS5 reply."""
    account = Account.pop3(dovecot, mailbox.user, mailbox.password)
    result = Mailcli(account)("stat", "--proxy", f"socks5://{postfix.host}:{postfix.smtp_port}")
    assert result.code == 69, result.stderr
    assert f"{postfix.host}:{postfix.smtp_port} does not answer as a SOCKS5 proxy" in result.stderr


def test_a_proxy_key_of_another_kind_is_78(
    dovecot: Dovecot, mailbox: Mailbox, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[accounts.a.pop3]\nhost = "127.0.0.1"\nproxy = "http://h:3128"\n')
    result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
        "stat", env={"MAILCLI_CONFIG": str(config)}
    )
    assert result.code == 78, result.stderr
    assert "accounts.a.pop3.proxy: must be a socks5:// or socks5h:// URL" in result.stderr


@pytest.mark.parametrize("command", [["account", "show", "px"], ["account", "list"]])
@pytest.mark.parametrize("json_output", [[], ["--json"]])
def test_account_show_and_list_hide_the_proxy_password(
    tmp_path: Path, command: list[str], json_output: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[accounts.px.pop3]\nhost = "127.0.0.1"\n'
        'proxy = "socks5h://me:Pr0xy-Secret@127.0.0.1:1080"\n'
    )
    result = run_cli([*command, *json_output], env={"MAILCLI_CONFIG": str(config)})
    assert result.code == 0, result.stderr
    assert "Pr0xy-Secret" not in result.stdout + result.stderr
    if command[1] == "show" or json_output:  # list's table has no proxy column
        assert "socks5h://me:***@127.0.0.1:1080" in result.stdout


def silent_after_the_greeting(conn: Conn) -> None:
    conn.recv_bytes(3)  # the method offer; then nothing until the client leaves
    conn.recv_bytes(1)


def hanging_up_mid_reply(conn: Conn) -> None:
    conn.recv_bytes(3)
    conn.send_bytes(b"\x05")  # half of the method choice
    conn.close()


@pytest.mark.parametrize(
    ("script", "status", "message"),
    [
        (silent_after_the_greeting, 75, "did not answer within 0.5 s"),
        (hanging_up_mid_reply, 69, "closed the connection during the handshake"),
    ],
)
def test_a_proxy_failing_in_the_handshake(
    dovecot: Dovecot, mailbox: Mailbox, script: Script, status: int, message: str
) -> None:
    with ScriptedServer(script) as proxy:
        result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
            "stat", "--timeout", "0.5", "--proxy", f"socks5://{proxy.host}:{proxy.port}"
        )
    assert result.code == status, result.stderr
    assert f"the SOCKS5 proxy {proxy.host}:{proxy.port} {message}" in result.stderr


def refusing_every_method(conn: Conn) -> None:
    conn.recv_bytes(4)  # version, 2 methods: none and user/password
    conn.send_bytes(b"\x05\xff")  # no acceptable method (a GSSAPI-only proxy)
    conn.recv_bytes(1)


def test_a_proxy_accepting_no_method_offered_is_77(
    dovecot: Dovecot, mailbox: Mailbox, tmp_path: Path
) -> None:
    with ScriptedServer(refusing_every_method) as proxy:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[accounts.a.pop3]\nhost = "127.0.0.1"\nport = {dovecot.pop3_port}\n'
            f'proxy = "socks5://u:Secret-7@{proxy.host}:{proxy.port}"\n'
        )
        result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
            "stat", env={"MAILCLI_CONFIG": str(config)}
        )
    assert result.code == 77, result.stderr
    assert "accepts neither no authentication nor a user name and password" in result.stderr
    assert "Secret-7" not in result.stderr


def accepting_no_authentication(conn: Conn) -> None:
    conn.recv_bytes(3)
    conn.send_bytes(b"\x05\x00")
    conn.recv_bytes(1)  # the request would follow; wait until the client leaves


def test_a_name_that_cannot_be_sent_is_68(dovecot: Dovecot, mailbox: Mailbox) -> None:
    """A name with an empty label is no host name, to the resolver (direct, socks5) and
    to the proxy (socks5h, sent as DNS would take it): 68, never an internal error."""
    account = Account.pop3(dovecot, mailbox.user, mailbox.password)
    bad = Mailcli(replace(account, host="bad..example.test"))
    with ScriptedServer(accepting_no_authentication) as proxy:
        results = [
            bad("stat"),
            bad("stat", "--proxy", f"socks5://{HOST}:{proxy.port}"),
            bad("stat", "--proxy", f"socks5h://{HOST}:{proxy.port}"),
        ]
    for result in results:
        assert result.code == 68, result.stderr
        assert "cannot resolve host 'bad..example.test'" in result.stderr
