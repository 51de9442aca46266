"""SOCKS5 (transport.socks) through a real proxy, Debian's microsocks, in front of the
test Postfix and Dovecot: without and with a user name and password (RFC 1929), socks5h
handing the proxy a name only it can resolve (its own /etc/hosts), and each failure's
status: a wrong or missing proxy password 77, the proxy refusing the target 69, the proxy
unreachable 69. The proxy password never shows (transcript, errors), and ALL_PROXY is
used only when the account says proxy = "env"."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Mailcli, Result, run_process
from tests.servers.accounts import Account, numbered_message
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import Microsocks, require_microsocks
from tests.servers.fixtures import Mailbox
from tests.servers.ports import HOST, free_port
from tests.servers.postfix import Postfix

PROXY_USER, PROXY_PASSWORD = "px", "px-Secret-42"
PROXY_ONLY_NAME = "pop.proxy-only.test"  # in the proxy's /etc/hosts, nowhere else


@pytest.fixture(scope="module")
def proxy() -> Iterator[Microsocks]:
    require_microsocks()
    with Microsocks() as server:
        yield server


@pytest.fixture(scope="module")
def auth_proxy() -> Iterator[Microsocks]:
    require_microsocks()
    with Microsocks(PROXY_USER, PROXY_PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def naming_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Microsocks]:
    require_microsocks()
    hosts = tmp_path_factory.mktemp("proxy-hosts") / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {PROXY_ONLY_NAME}\n")
    with Microsocks(hosts=hosts) as server:
        yield server


def url(proxy: Microsocks, scheme: str = "socks5", userinfo: str = "") -> str:
    return f"{scheme}://{userinfo}{HOST}:{proxy.port}"


def test_send_through_the_proxy(postfix: Postfix, mailbox: Mailbox, proxy: Microsocks) -> None:
    account = Account.submission(postfix, mailbox.user, mailbox.password)
    result = Mailcli(account)(
        "send", "--from", mailbox.address, "--to", mailbox.address, "--subject", "socks",
        "--body", "x", "--proxy", url(proxy), "--trace",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert f"== via socks5 {HOST}:{proxy.port}\n" in result.stderr
    proxy.wait_for_log(f"connected to {HOST}:{postfix.submission_port}")
    postfix.wait_for_delivery(mailbox.user)


def config_file(tmp_path: Path, dovecot: Dovecot, box: Mailbox, proxy: str) -> Path:
    """An account whose POP3 table names `proxy` (the proxy password lives here)."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[accounts.px]\nuser = "{box.user}"\n[accounts.px.pop3]\nhost = "{HOST}"\n'
        f'port = {dovecot.pop3_port}\ncafile = "{dovecot.certs.ca_pem}"\nproxy = "{proxy}"\n'
    )
    return path


def run(config: Path, box: Mailbox, *args: str, env: dict[str, str] | None = None) -> Result:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILCLI_")}
    environ |= {"MAILCLI_CONFIG": str(config), "MAILCLI_PASSWORD": box.password, **(env or {})}
    done = run_process(["stat", "--trace", *args], env=environ)
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def test_stat_through_a_proxy_with_a_password(
    dovecot: Dovecot, mailbox: Mailbox, auth_proxy: Microsocks, tmp_path: Path
) -> None:
    userinfo = f"{PROXY_USER}:{PROXY_PASSWORD}@"
    result = run(
        config_file(tmp_path, dovecot, mailbox, url(auth_proxy, userinfo=userinfo)), mailbox
    )
    assert result.code == 0, result.stderr
    assert f"== via socks5 {HOST}:{auth_proxy.port}\n" in result.stderr
    assert PROXY_PASSWORD not in result.stderr + result.stdout
    auth_proxy.wait_for_log(f"connected to {HOST}:{dovecot.pop3_port}")


@pytest.mark.parametrize("userinfo", [f"{PROXY_USER}:wrong@", ""], ids=["wrong", "none"])
def test_a_refused_proxy_login_is_77(
    dovecot: Dovecot, mailbox: Mailbox, auth_proxy: Microsocks, tmp_path: Path, userinfo: str
) -> None:
    result = run(
        config_file(tmp_path, dovecot, mailbox, url(auth_proxy, userinfo=userinfo)), mailbox
    )
    assert result.code == 77, result.stderr
    assert f"the SOCKS5 proxy {HOST}:{auth_proxy.port}" in result.stderr
    assert "wrong" not in result.stderr and "+OK" not in result.stderr  # no POP3 at all


def test_the_proxy_refusing_the_target_is_69(
    dovecot: Dovecot, mailbox: Mailbox, proxy: Microsocks, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens: the proxy's connect is refused
    result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password).via(closed))(
        "stat", "--proxy", url(proxy)
    )
    assert result.code == 69, result.stderr
    assert f"could not connect to {HOST}:{closed}: connection refused (reply 5)" in result.stderr


def test_an_unreachable_proxy_is_69(dovecot: Dovecot, mailbox: Mailbox) -> None:
    closed = free_port()
    result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
        "stat", "--proxy", f"socks5://{HOST}:{closed}"
    )
    assert result.code == 69, result.stderr
    assert (
        f"cannot connect to the SOCKS5 proxy {HOST}:{closed}: Connection refused" in result.stderr
    )


def test_socks5h_lets_the_proxy_resolve_the_name(
    dovecot: Dovecot, mailbox: Mailbox, naming_proxy: Microsocks
) -> None:
    """The name is in the proxy's /etc/hosts only: socks5 (resolved here) is 68, socks5h
    reaches Dovecot, and the proxy's log shows it was handed the name."""
    account = Account.pop3(dovecot, mailbox.user, mailbox.password, security="tls")
    named = Mailcli(Account(PROXY_ONLY_NAME, account.port, mailbox.user, mailbox.password, "tls"))
    local = named("stat", "--insecure", "--proxy", url(naming_proxy))
    assert local.code == 68, local.stderr
    remote = named("stat", "--insecure", "--proxy", url(naming_proxy, "socks5h"))
    assert remote.code == 0, remote.stderr
    naming_proxy.wait_for_log(f"connected to {PROXY_ONLY_NAME}:{dovecot.pop3s_port}")


def test_all_proxy_only_when_the_account_says_env(
    dovecot: Dovecot, mailbox: Mailbox, proxy: Microsocks, tmp_path: Path
) -> None:
    config = config_file(tmp_path, dovecot, mailbox, "")
    stray = {"ALL_PROXY": f"socks5://{HOST}:{free_port()}"}  # nothing there: would fail
    direct = run(config, mailbox, env=stray)
    assert direct.code == 0, direct.stderr
    assert "via socks5" not in direct.stderr
    config = config_file(tmp_path, dovecot, mailbox, "env")
    routed = run(config, mailbox, env={"ALL_PROXY": url(proxy)})
    assert routed.code == 0, routed.stderr
    assert f"== via socks5 {HOST}:{proxy.port}\n" in routed.stderr


def test_a_password_on_the_command_line_is_refused(dovecot: Dovecot, mailbox: Mailbox) -> None:
    result = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))(
        "stat", "--proxy", f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@{HOST}:1080"
    )
    assert result.code == 64, result.stderr
    assert "put the URL in the config file" in result.stderr
    assert PROXY_PASSWORD not in result.stderr


def test_fetch_and_check_through_the_proxy(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox, proxy: Microsocks, tmp_path: Path
) -> None:
    """fetch and check connect the same way: through the proxy, which logs each."""
    mailbox.drop(numbered_message(1))
    pop3 = Mailcli(Account.pop3(dovecot, mailbox.user, mailbox.password))
    fetched = pop3("fetch", "--to", f"mbox:{tmp_path / 'inbox'}", "--json", "--proxy", url(proxy))
    assert fetched.code == 0, fetched.stderr
    assert json.loads(fetched.stdout)["fetched"] == 1
    smtp = Mailcli(Account.submission(postfix, mailbox.user, mailbox.password))
    checked = smtp("check", "smtp", "--proxy", url(proxy), "--trace")
    assert checked.code == 0, checked.stderr
    assert f"== via socks5 {HOST}:{proxy.port}\n" in checked.stderr
    log = proxy.wait_for_log(f"connected to {HOST}:{postfix.submission_port}")
    assert f"connected to {HOST}:{dovecot.pop3_port}" in log


def test_check_names_the_proxy_and_the_source_address(
    postfix: Postfix, mailbox: Mailbox, auth_proxy: Microsocks, tmp_path: Path
) -> None:
    """check's summary (and --json) says how it connected; the proxy without its password."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.px.smtp]\nhost = "{HOST}"\nport = {postfix.submission_port}\n'
        f'cafile = "{postfix.certs.ca_pem}"\nsource_address = "127.0.0.2"\n'
        f'proxy = "{url(auth_proxy, userinfo=f"{PROXY_USER}:{PROXY_PASSWORD}@")}"\n'
    )
    shown = f"socks5://{PROXY_USER}:***@{HOST}:{auth_proxy.port}"
    env = {"MAILCLI_CONFIG": str(config)}
    text = Mailcli(Account(HOST, postfix.submission_port))("check", "smtp", env=env)
    assert text.code == 0, text.stderr
    assert f"proxy\t{shown}\n" in text.stdout and "source address\t127.0.0.2\n" in text.stdout
    report = json.loads(
        Mailcli(Account(HOST, postfix.submission_port))("check", "smtp", "--json", env=env).stdout
    )
    assert (report["proxy"], report["source_address"]) == (shown, "127.0.0.2")
    assert PROXY_PASSWORD not in text.stdout + text.stderr
