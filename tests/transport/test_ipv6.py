"""IPv6 literals and -4/-6 (mailcli.connect), against Postfix and Dovecot listening on
127.0.0.1 and ::1: `[::1]` and `::1` both work wherever a host is taken (option,
environment, config), TLS checks the certificate's IP address (the test CA's leaf has
127.0.0.1 and ::1), the transcript writes `[::1]:PORT`; -4/-6 keep one family, and a
name without an address of it is 68. Names resolving to one family only come from a
private /etc/hosts (`with_hosts`): the machine's own says different things everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Mailcli
from tests.servers import NEEDS, require, skip_unless_ready
from tests.servers.accounts import Account, numbered_message
from tests.servers.certs import make_certs
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import (
    DualStackPostfix,
    Microsocks,
    dual_stack_dovecot,
    ipv6_loopback_missing,
    require_microsocks,
    with_hosts,
)
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.procs import make_workdir

# glibc answers an IPv4 query for a name on a ::1 line with 127.0.0.1, so the IPv6-only
# name has an address never connected to (documentation prefix): -4 must fail resolving.
HOSTS = "::1 mail6.example.test\n127.0.0.1 mail4.example.test\n2001:db8::25 only6.example.test\n"


@pytest.fixture(scope="module")
def postfix6(dovecot6: Dovecot) -> Iterator[DualStackPostfix]:
    require(*NEEDS["postfix"], need_root=True)
    with DualStackPostfix(dovecot6) as server:
        yield server


@pytest.fixture
def box(dovecot6: Dovecot) -> Mailbox:
    return make_mailbox(dovecot6, "six")


def send_args(box: Mailbox) -> list[str]:
    return ["send", "--from", box.address, "--to", box.address, "--subject", "v6", "--body", "x"]


@pytest.mark.parametrize("host", ["[::1]", "::1"])
def test_send_to_an_ipv6_literal(postfix6: DualStackPostfix, box: Mailbox, host: str) -> None:
    """STARTTLS on the submission port: the certificate is checked against ::1."""
    account = replace(Account.submission(postfix6, box.user, box.password), host=host)
    result = Mailcli(account)(*send_args(box), "--trace")
    assert result.code == 0, result.stderr
    assert f"connecting to [::1]:{postfix6.submission_port}" in result.stderr
    postfix6.wait_for_delivery(box.user)
    postfix6.wait_for_log(f"client=unknown[::1], sasl_method=PLAIN, sasl_username={box.user}\n")


@pytest.mark.parametrize("host", ["[::1]", "::1"])
def test_stat_over_implicit_tls_to_an_ipv6_literal(
    dovecot6: Dovecot, box: Mailbox, host: str
) -> None:
    account = replace(Account.pop3(dovecot6, box.user, box.password, security="tls"), host=host)
    result = Mailcli(account)("stat", "--json", "--trace")
    assert result.code == 0, result.stderr
    assert f"connecting to [::1]:{dovecot6.pop3s_port}" in result.stderr
    dovecot6.wait_for_log(f"user=<{box.user}>, method=PLAIN, rip=::1, lip=::1")


def test_config_host_in_brackets(
    postfix6: DualStackPostfix, dovecot6: Dovecot, box: Mailbox, tmp_path: Path
) -> None:
    """`host = "[::1]"` in both tables: sendmail submits through Postfix over ::1 (STARTTLS,
    the certificate checked against ::1), then stat (STLS) sees the message."""
    config = tmp_path / "config.toml"
    ca = dovecot6.certs.ca_pem
    config.write_text(
        f'[accounts.six]\nfrom = "{box.address}"\nuser = "{box.user}"\n'
        f'[accounts.six.smtp]\nhost = "[::1]"\nport = {postfix6.submission_port}\n'
        f'cafile = "{ca}"\n'
        f'[accounts.six.pop3]\nhost = "[::1]"\nport = {dovecot6.pop3_port}\ncafile = "{ca}"\n'
    )
    message = f"From: {box.address}\nTo: {box.address}\nSubject: six\n\nbody\n"
    sent = run(["sendmail", "-t"], config, box.password, input=message)
    assert sent.returncode == 0, sent.stderr
    postfix6.wait_for_delivery(box.user)
    postfix6.wait_for_log(f"client=unknown[::1], sasl_method=PLAIN, sasl_username={box.user}\n")
    result = run(["stat"], config, box.password)
    assert result.returncode == 0 and result.stdout.startswith("1\t"), result.stderr
    dovecot6.wait_for_log(f"user=<{box.user}>, method=PLAIN, rip=::1, lip=::1")


def test_ipv4_only_to_an_ipv6_literal_is_a_usage_error(dovecot6: Dovecot, box: Mailbox) -> None:
    account = replace(Account.pop3(dovecot6, box.user, box.password), host="::1")
    result = Mailcli(account)("stat", "-4")
    assert result.code == 64, result.stderr
    assert "::1 is an IPv6 address" in result.stderr


def test_families_of_a_name(dovecot6: Dovecot, box: Mailbox, tmp_path: Path) -> None:
    """mail6 reaches ::1 with -6, mail4 127.0.0.1 with -4; a name without an address of
    the family asked for (only6 with -4, mail4 with -6) is 68 naming the family."""
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    port = str(dovecot6.pop3s_port)
    common = ["stat", "--port", port, "--security", "tls", "--user", box.user, "--insecure"]
    outcomes = {}
    for name, family in [("mail6", "-6"), ("only6", "-4"), ("mail4", "-4"), ("mail4", "-6")]:
        args = [*common, "--host", f"{name}.example.test", family]
        outcomes[name, family] = run(args, None, box.password, hosts=hosts)
    assert outcomes["mail6", "-6"].returncode == 0, outcomes["mail6", "-6"].stderr
    assert outcomes["mail4", "-4"].returncode == 0, outcomes["mail4", "-4"].stderr
    for name, family, missing in [("only6", "-4", "IPv4"), ("mail4", "-6", "IPv6")]:
        result = outcomes[name, family]
        assert result.returncode == 68, result.stderr
        assert f"to an {missing} address" in result.stderr


def run(
    args: list[str],
    config: Path | None,
    password: str,
    *,
    hosts: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """mailcli as a process (with `hosts` as its /etc/hosts, when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCLI_")}
    env["MAILCLI_PASSWORD"] = password
    if config is not None:
        env["MAILCLI_CONFIG"] = str(config)
    argv = [*MAILCLI, *args]
    if hosts is not None:
        argv = with_hosts(hosts, argv)
    return subprocess.run(
        argv, env=env, input=input, capture_output=True, text=True, timeout=60, check=False
    )


def test_fetch_and_check_over_ipv6(
    postfix6: DualStackPostfix, dovecot6: Dovecot, box: Mailbox, tmp_path: Path
) -> None:
    box.drop(numbered_message(1))
    pop3 = Mailcli(replace(Account.pop3(dovecot6, box.user, box.password), host="[::1]"))
    fetched = pop3("fetch", "--to", f"mbox:{tmp_path / 'inbox'}", "--json")
    assert fetched.code == 0, fetched.stderr
    assert json.loads(fetched.stdout)["fetched"] == 1
    smtp = Mailcli(replace(Account.submission(postfix6, box.user, box.password), host="::1"))
    checked = smtp("check", "smtp", "-6", "--trace")
    assert checked.code == 0, checked.stderr
    assert f"connecting to [::1]:{postfix6.submission_port}" in checked.stderr
    postfix6.wait_for_log("disconnect from unknown[::1] ehlo=2 starttls=1 quit=1 commands=4")


def test_config_key_family(dovecot6: Dovecot, box: Mailbox, tmp_path: Path) -> None:
    """`family = "ipv6"` keeps mail4 (IPv4 only) out of reach (68); "inet6" is no family
    (78 naming the key)."""
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    config = tmp_path / "config.toml"
    table = f'[accounts.six.pop3]\nhost = "mail4.example.test"\nport = {dovecot6.pop3_port}\n'
    config.write_text(table + 'family = "ipv6"\n')
    result = run(["stat", "--user", box.user], config, box.password, hosts=hosts)
    assert result.returncode == 68, result.stderr
    assert "'mail4.example.test' to an IPv6 address" in result.stderr
    config.write_text(table + 'family = "inet6"\n')
    result = run(["stat", "--user", box.user], config, box.password)
    assert result.returncode == 78, result.stderr
    assert "accounts.six.pop3.family" in result.stderr


def test_source_address_over_ipv6(dovecot6: Dovecot, box: Mailbox) -> None:
    """An IPv6 source address binds an IPv6 connection; with -4 it contradicts (64)."""
    account = replace(Account.pop3(dovecot6, box.user, box.password), host="[::1]")
    result = Mailcli(account)("stat", "--source-address", "::1")
    assert result.code == 0, result.stderr
    dovecot6.wait_for_log(f"user=<{box.user}>, method=PLAIN, rip=::1, lip=::1")
    mixed = Mailcli(replace(account, host="127.0.0.1"))("stat", "--source-address", "::1", "-4")
    assert mixed.code == 64, mixed.stderr
    assert "source address ::1 is IPv6, but -4 (family = ipv4) asks for IPv4" in mixed.stderr


def test_an_ipv6_server_through_a_socks5_proxy(dovecot6: Dovecot, box: Mailbox) -> None:
    """The proxy is asked for [::1] as an IPv6 address (ATYP 4), and connects there."""
    require_microsocks()
    account = replace(Account.pop3(dovecot6, box.user, box.password), host="[::1]")
    with Microsocks() as proxy:
        result = Mailcli(account)("stat", "--proxy", f"socks5://{proxy.host}:{proxy.port}")
        assert result.code == 0, result.stderr
        proxy.wait_for_log(f"connected to ::1:{dovecot6.pop3_port}")
    dovecot6.wait_for_log(f"user=<{box.user}>, method=PLAIN, rip=::1, lip=::1")


def test_the_certificate_must_name_the_ipv6_address(tmp_path: Path) -> None:
    """A leaf for localhost and 127.0.0.1 only: over ::1 its IP addresses are checked and
    ::1 is not among them (77); over 127.0.0.1 the same server is trusted."""
    require(*NEEDS["dovecot"], need_root=True)
    skip_unless_ready(ipv6_loopback_missing())
    directory = make_workdir("certs4-")
    certs = make_certs(directory, "v4only", identities=("localhost", "127.0.0.1"))
    try:
        with dual_stack_dovecot(certs) as dovecot:
            account = Account.pop3(dovecot, "alice", "alice-pw", security="tls")
            over_ipv4 = Mailcli(account)("stat")
            over_ipv6 = Mailcli(replace(account, host="[::1]"))("stat")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert over_ipv4.code == 0, over_ipv4.stderr
    assert over_ipv6.code == 77, over_ipv6.stderr
    assert "TLS certificate of [::1]:" in over_ipv6.stderr
    assert "IP address mismatch" in over_ipv6.stderr
