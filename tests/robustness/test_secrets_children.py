"""Secret hygiene of every program mailcli starts, as strace sees it execute (`execve`
with -f -v: the whole argv and environment, the short-lived programs included, which a
look at /proc while they run could miss): the filter's program lookup, the filter and
the MDA of a fetch through a SOCKS5 proxy with a password, a password_command, check's
openssl s_client. None gets MAILCLI_PASSWORD or MAILCLI_CLIENT_KEY_PASSPHRASE, and no
secret (the proxy password, the key's passphrase, the mail password) is in any argv or
environment."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import MAILCLI
from tests.servers.accounts import numbered_message
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import Microsocks, require_microsocks
from tests.servers.fixtures import Mailbox
from tests.servers.hygiene import (
    PASSPHRASE,
    PASSPHRASE_VAR,
    PROXY_PASSWORD,
    PROXY_USER,
    Setup,
    assert_no_secret,
    child_executions,
    configure,
    mail_secrets,
    make_setup,
    password_file,
    proxy_url,
)
from tests.servers.postfix import Postfix


@pytest.fixture(scope="module")
def auth_proxy() -> Iterator[Microsocks]:
    require_microsocks()
    with Microsocks(PROXY_USER, PROXY_PASSWORD) as server:
        yield server


@pytest.fixture
def setup(tmp_path: Path, mailbox: Mailbox) -> Iterator[Setup]:
    with make_setup(tmp_path, mailbox) as made:
        yield made


def run_under_strace(setup: Setup, args: list[str], env: dict[str, str]) -> list[str]:
    """mailcli ARGS under strace (it must succeed, its output holding no secret); the
    execve lines of the programs it started."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (Debian package strace)")
    trace = setup.root / "strace.out"
    strace = ["strace", "-f", "-qq", "-v", "-s", "65536", "-e", "trace=execve", "-o", str(trace)]
    done = subprocess.run(
        [*strace, *MAILCLI, "--trace", *args], env=env, capture_output=True, check=False
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output
    assert_no_secret(output, PROXY_PASSWORD, PASSPHRASE, *mail_secrets(setup.mailbox))
    return child_executions(trace)


@pytest.mark.parametrize("scenario", ["fetch", "password-command", "check"])
def test_no_program_mailcli_starts_gets_a_secret(
    setup: Setup, dovecot: Dovecot, postfix: Postfix, auth_proxy: Microsocks, scenario: str
) -> None:
    """Every execve mailcli makes, the short-lived ones included, as strace records it:
    neither the secret variables nor any secret in argv or environment. fetch through
    the proxy with a filter (and its program lookup) and an MDA, the mail password and
    the passphrase in mailcli's environment; the same with a password_command instead;
    check pop3 (openssl s_client, which runs only without a proxy)."""
    setup.mailbox.drop(numbered_message(1))
    delivered = setup.root / "delivered"
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(setup.mailbox))
    env = setup.env(**{PASSPHRASE_VAR: PASSPHRASE, "MAILCLI_PASSWORD": setup.mailbox.password})
    proxy = "" if scenario == "check" else proxy_url(auth_proxy.port)
    configure(setup, proxy, dovecot, postfix.submission_port)
    args = ["fetch", "--filter", "cat > /dev/null", "--to", f"mda:cat > {delivered}"]
    expected = [f"cat > {delivered}", "cat > /dev/null"]  # the MDA, the filter
    if scenario == "password-command":
        del env["MAILCLI_PASSWORD"]
        expected.append(f"cat {password_file(setup)}")
    elif scenario == "check":
        args, expected = ["check", "pop3"], ["s_client"]
    children = run_under_strace(setup, args, env)
    for command in expected:
        assert any(command in line for line in children), (command, children)
    for line in children:
        assert f'"{PASSPHRASE_VAR}=' not in line and '"MAILCLI_PASSWORD=' not in line, line
        assert_no_secret(line, *secrets)
