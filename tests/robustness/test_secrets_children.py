"""Secret hygiene of every program mailcli starts, as strace sees it execute (`execve`
with -f -v: the whole argv and environment, the short-lived programs included, which a
look at /proc while they run could miss): the filter's program lookup, the filter and
the MDA of a fetch through a SOCKS5 proxy with a password, a password_command, check's
openssl s_client. None gets MAILCLI_PASSWORD or MAILCLI_CLIENT_KEY_PASSPHRASE, and no
secret (the proxy password, the key's passphrase, the mail password) is in any argv or
environment."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import MAILCLI
from tests.servers import require
from tests.servers.accounts import numbered_message
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import Microsocks
from tests.servers.hygiene import (
    PASSPHRASE,
    PASSPHRASE_VAR,
    PROXY_PASSWORD,
    Setup,
    assert_no_secret,
    child_executions,
    configure,
    mail_secrets,
    password_file,
    proxy_url,
)
from tests.servers.postfix import Postfix


def run_under_strace(hygiene: Setup, args: list[str], env: dict[str, str]) -> list[str]:
    """mailcli ARGS under strace (it must succeed, its output holding no secret); the
    execve lines of the programs it started."""
    require("strace")
    trace = hygiene.root / "strace.out"
    strace = ["strace", "-f", "-qq", "-v", "-s", "65536", "-e", "trace=execve", "-o", str(trace)]
    done = subprocess.run(
        [*strace, *MAILCLI, "--trace", *args], env=env, capture_output=True, check=False
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output
    assert_no_secret(output, PROXY_PASSWORD, PASSPHRASE, *mail_secrets(hygiene.mailbox))
    return child_executions(trace)


@pytest.mark.parametrize("scenario", ["fetch", "password-command", "check"])
def test_no_program_mailcli_starts_gets_a_secret(
    hygiene: Setup, dovecot: Dovecot, postfix: Postfix, hygiene_proxy: Microsocks, scenario: str
) -> None:
    """Every execve mailcli makes, the short-lived ones included, as strace records it:
    neither the secret variables nor any secret in argv or environment. fetch through
    the proxy with a filter (and its program lookup) and an MDA, the mail password and
    the passphrase in mailcli's environment; the same with a password_command instead;
    check pop3 (openssl s_client, which runs only without a proxy)."""
    hygiene.mailbox.drop(numbered_message(1))
    delivered = hygiene.root / "delivered"
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(hygiene.mailbox))
    env = hygiene.env(**{PASSPHRASE_VAR: PASSPHRASE, "MAILCLI_PASSWORD": hygiene.mailbox.password})
    proxy = "" if scenario == "check" else proxy_url(hygiene_proxy.port)
    configure(hygiene, proxy, dovecot, postfix.submission_port)
    args = ["fetch", "--filter", "cat > /dev/null", "--to", f"mda:cat > {delivered}"]
    expected = [f"cat > {delivered}", "cat > /dev/null"]  # the MDA, the filter
    if scenario == "password-command":
        del env["MAILCLI_PASSWORD"]
        expected.append(f"cat {password_file(hygiene)}")
    elif scenario == "check":
        args, expected = ["check", "pop3"], ["s_client"]
    children = run_under_strace(hygiene, args, env)
    for command in expected:
        assert any(command in line for line in children), (command, children)
    for line in children:
        assert f'"{PASSPHRASE_VAR}=' not in line and '"MAILCLI_PASSWORD=' not in line, line
        assert_no_secret(line, *secrets)
