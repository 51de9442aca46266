"""Secret hygiene of the transport secrets: a SOCKS5 proxy's password (the `proxy` key's
`socks5://USER:PASSWORD@HOST:PORT`) and an encrypted client key's passphrase
(MAILCLI_CLIENT_KEY_PASSPHRASE, or the keyring entry client-key:PATH).

A send and a fetch go through a real microsocks that wants that password, with the key
encrypted and the mail password from a password_command. The password_command and the
MDA stop where they run (`Gate`, a fifo they wait on) while the test reads every
process's argv and the child's /proc/PID/environ; afterwards the --trace and --debug
output, the log (`log` key) and every file mailcli wrote (state, queue) are scanned. The
proxy's own argv (microsocks -P PASSWORD) is the test's, not mailcli's: it is left out.
Every failure of the proxy (a refused login 77; a refused target, no proxy, a peer that
is no proxy 69; a silent one 75) and a wrong passphrase (78) name neither secret, nor
do account show/list and check; a message sendmail queues while the proxy is down keeps
no proxy password in its entry. The helpers are in tests/servers/hygiene.py."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, run_process
from tests.servers.accounts import numbered_message
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import Microsocks
from tests.servers.hygiene import (
    PASSPHRASE,
    PASSPHRASE_VAR,
    PROXY_PASSWORD,
    PROXY_USER,
    Gate,
    Setup,
    all_files_text,
    assert_no_secret,
    configure,
    inspect_child,
    mail_secrets,
    password_file,
    proxy_url,
)
from tests.servers.keyring_service import SecretService
from tests.servers.ports import HOST, free_port
from tests.servers.postfix import Postfix
from tests.servers.procs import kill_group


def run_gated(hygiene: Setup, args: list[str], gates: list[Gate], env: dict[str, str]) -> str:
    """mailcli ARGS as a process, each gate inspected in turn; its stdout and stderr."""
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(hygiene.mailbox))
    mailcli = subprocess.Popen(
        [*MAILCLI, "--debug", "--trace", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its children too are ended if a check fails at a gate
    )
    try:
        for gate in gates:
            inspect_child(gate, mailcli, *secrets)
        stdout, stderr = mailcli.communicate(timeout=60)
    finally:
        kill_group(mailcli.pid)
        mailcli.wait()
    output = stdout.decode() + stderr.decode()
    assert mailcli.returncode == 0, output
    assert_no_secret(output, *secrets)
    return output


def store_passphrase(env: dict[str, str], key: Path) -> None:
    """The key's passphrase into the keyring `env` reaches, as a user stores it."""
    stored = run_process(
        ["password", "set", f"client-key:{key}"], env=env, input=f"{PASSPHRASE}\n".encode()
    )
    assert stored.returncode == 0, stored.stderr


@pytest.fixture(params=["environment", "keyring"])
def passphrase_env(request: pytest.FixtureRequest, hygiene: Setup) -> dict[str, str]:
    """mailcli's environment, the key's passphrase in PASSPHRASE_VAR or in the keyring."""
    if request.param == "environment":
        return hygiene.env(**{PASSPHRASE_VAR: PASSPHRASE})
    service: SecretService = request.getfixturevalue("secret_service")
    env = service.subprocess_env(hygiene.env())
    env["XDG_STATE_HOME"] = str(hygiene.home / "state")  # mailcli's files stay in home
    store_passphrase(env, hygiene.key)
    return env


def test_fetch_through_the_proxy_to_an_mda(
    hygiene: Setup,
    passphrase_env: dict[str, str],
    dovecot: Dovecot,
    postfix: Postfix,
    hygiene_proxy: Microsocks,
) -> None:
    hygiene.mailbox.drop(numbered_message(1))
    asking, mda = Gate(hygiene.root, "password-command"), Gate(hygiene.root, "mda")
    delivered = hygiene.root / "delivered"
    ca = dovecot.certs.ca_pem
    command = f"{asking.command} && cat {password_file(hygiene)}"
    hygiene.write_config(
        proxy_url(hygiene_proxy.port), postfix.submission_port, dovecot.pop3_port, ca, command
    )
    fetch = ["fetch", "--to", f"mda:{mda.command} && cat > {delivered}"]
    output = run_gated(hygiene, fetch, [asking, mda], passphrase_env)
    assert f"== via socks5 {HOST}:{hygiene_proxy.port}\n" in output
    assert delivered.read_bytes().endswith(numbered_message(1).split(b"\n\n", 1)[1])
    assert hygiene.log.exists() and any((hygiene.home / "state" / "mailcli").rglob("*"))
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(hygiene.mailbox))
    assert_no_secret(all_files_text(hygiene.home), *secrets)


def test_send_through_the_proxy(
    hygiene: Setup, dovecot: Dovecot, postfix: Postfix, hygiene_proxy: Microsocks
) -> None:
    asking = Gate(hygiene.root, "password-command")
    ca = postfix.certs.ca_pem
    command = f"{asking.command} && cat {password_file(hygiene)}"
    hygiene.write_config(
        proxy_url(hygiene_proxy.port), postfix.submission_port, dovecot.pop3_port, ca, command
    )
    address = hygiene.mailbox.address
    send = ["send", "--to", address, "--subject", "hygiene", "--body", "x"]
    output = run_gated(hygiene, send, [asking], hygiene.env(**{PASSPHRASE_VAR: PASSPHRASE}))
    assert f"== via socks5 {HOST}:{hygiene_proxy.port}\n" in output
    postfix.wait_for_delivery(hygiene.mailbox.user)
    assert hygiene.log.exists()
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(hygiene.mailbox))
    assert_no_secret(all_files_text(hygiene.home), *secrets)


def run_plain(hygiene: Setup, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """mailcli --debug --trace ARGS as a process: its status, stdout and stderr."""
    environ = env if env is not None else hygiene.env(**{PASSPHRASE_VAR: PASSPHRASE})
    done = run_process(["--debug", "--trace", *args], env=environ, input=b"")
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def test_a_message_queued_while_the_proxy_is_down(
    hygiene: Setup, dovecot: Dovecot, postfix: Postfix
) -> None:
    """sendmail queues it; neither the entry nor `queue list`/`queue run` holds the
    proxy password, though the entry records why it waits (the proxy)."""
    down = free_port()
    configure(hygiene, proxy_url(down), dovecot, postfix.submission_port)
    environ = hygiene.env(**{PASSPHRASE_VAR: PASSPHRASE})
    queued = run_process(
        ["sendmail", "-i", hygiene.mailbox.address], env=environ, input=b"Subject: q\n\nq\n"
    )
    assert queued.returncode == 0, queued.stderr
    entries = list((hygiene.home / "state" / "mailcli" / "queue").rglob("*.json"))
    assert len(entries) == 1, entries
    assert f"{HOST}:{down}" in entries[0].read_text()  # the proxy named, by its address
    assert_no_secret(all_files_text(hygiene.home), PROXY_PASSWORD, PASSPHRASE)
    for command, status in ((["queue", "list", "--json"], 0), (["queue", "run"], 75)):
        code, output = run_plain(hygiene, *command)
        assert code == status, output
        assert f"{HOST}:{down}" in output, output  # the error, with the proxy's address
        assert_no_secret(output, PROXY_PASSWORD, PASSPHRASE)
    assert_no_secret(all_files_text(hygiene.home), PROXY_PASSWORD, PASSPHRASE)
    assert_no_secret(queued.stderr.decode(), PROXY_PASSWORD, PASSPHRASE)


FAILURES = ["wrong-password", "refused-target", "no-proxy", "not-socks", "silent"]


@pytest.mark.parametrize("command", ["send", "stat"])
@pytest.mark.parametrize("failure", FAILURES)
def test_every_proxy_failure_names_no_password(
    hygiene: Setup,
    dovecot: Dovecot,
    postfix: Postfix,
    hygiene_proxy: Microsocks,
    command: str,
    failure: str,
) -> None:
    """The message of each failure, its --debug traceback and the transcript. "silent":
    a proxy that takes the connection and never answers (--timeout 1)."""
    wrong, closed, down = "Wrong-Hygiene-pw3", free_port(), free_port()
    with socket.create_server((HOST, 0)) as silent:
        proxy, port, status, message = {
            "wrong-password": (proxy_url(hygiene_proxy.port, wrong), 0, 77, "the SOCKS5 proxy"),
            "refused-target": (proxy_url(hygiene_proxy.port), closed, 69, "connection refused"),
            "no-proxy": (proxy_url(down), 0, 69, "cannot connect to the SOCKS5 proxy"),
            "not-socks": (proxy_url(dovecot.pop3_port), 0, 69, "SOCKS5"),
            "silent": (proxy_url(silent.getsockname()[1]), 0, 75, "did not answer"),
        }[failure]
        configure(hygiene, proxy, dovecot, port or postfix.submission_port, port)
        args = ["send", "--to", hygiene.mailbox.address, "--body", "x"]
        args = [*(args if command == "send" else ["stat"]), "--json"]  # what --json prints too
        timeout = ["--timeout", "1"] if failure == "silent" else []  # it never answers
        code, output = run_plain(hygiene, *args, *timeout)
    assert code == status, output
    assert "Traceback" in output, output  # --debug: the exception chain is shown too
    error = next(line for line in output.splitlines() if line.startswith("mailcli: error:"))
    assert message in error, output
    assert_no_secret(output, PROXY_PASSWORD, wrong, PASSPHRASE)


def test_a_wrong_passphrase_is_78_and_not_shown(
    hygiene: Setup, dovecot: Dovecot, postfix: Postfix, hygiene_proxy: Microsocks
) -> None:
    wrong = "Wrong-Key-phrase5"
    configure(hygiene, proxy_url(hygiene_proxy.port), dovecot, postfix.submission_port)
    for command in (["stat"], ["send", "--to", hygiene.mailbox.address, "--body", "x"]):
        code, output = run_plain(hygiene, *command, env=hygiene.env(**{PASSPHRASE_VAR: wrong}))
        assert code == 78, output
        assert "wrong passphrase" in output, output
        assert_no_secret(output, PROXY_PASSWORD, wrong, PASSPHRASE)


def test_what_mailcli_reports_about_the_account(
    hygiene: Setup, dovecot: Dovecot, postfix: Postfix, hygiene_proxy: Microsocks
) -> None:
    """account show/list and check (through the proxy) name the proxy as
    socks5://USER:***@HOST:PORT, never with its password or the passphrase."""
    configure(hygiene, proxy_url(hygiene_proxy.port), dovecot, postfix.submission_port)
    shown = f"socks5://{PROXY_USER}:***@{HOST}:{hygiene_proxy.port}"
    reports = (
        ["account", "show"],
        ["account", "show", "--json"],
        ["account", "list"],
        ["check", "smtp"],
        ["check", "pop3", "--json"],
        ["check", "smtp", "--audit", "--json"],
    )
    for command in reports:
        code, output = run_plain(hygiene, *command)
        assert code == 0 or ("--audit" in command and code == 76), output  # 76: findings
        assert_no_secret(output, PROXY_PASSWORD, PASSPHRASE, *mail_secrets(hygiene.mailbox))
        assert command[-1] == "list" or shown in output, output
