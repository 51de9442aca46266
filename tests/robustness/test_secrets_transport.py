"""Secret hygiene of the transport secrets: a SOCKS5 proxy's password (the `proxy` key's
`socks5://USER:PASSWORD@HOST:PORT`) and an encrypted client key's passphrase
(MAILCLI_CLIENT_KEY_PASSPHRASE, or the keyring entry client-key:PATH).

A send and a fetch go through a real microsocks that wants that password, with the key
encrypted and the mail password from a password_command. The password_command and the
MDA stop where they run (`Gate`, a fifo they wait on) while the test reads every
process's argv and the child's /proc/PID/environ; afterwards the --trace and --debug
output, the log (`log` key) and every file mailcli wrote (state, queue) are scanned. The
proxy's own argv (microsocks -P PASSWORD) is the test's, not mailcli's: it is left out.
Every failure of the proxy (a refused login 77, a refused target 69, no proxy 69) and a
wrong passphrase (78) name neither secret, and a message sendmail queues while the
proxy is down keeps no proxy password in its entry."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, run_process
from tests.servers.accounts import numbered_message
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import Microsocks, require_microsocks
from tests.servers.fixtures import Mailbox
from tests.servers.keyring_service import SecretService
from tests.servers.ports import HOST, free_port
from tests.servers.postfix import Postfix
from tests.servers.procs import kill_group, make_workdir
from tests.servers.tlstrust import ClientCA, encrypt_key

PROXY_USER, PROXY_PASSWORD = "hygiene", "Proxy-Hygiene-pw9"
PASSPHRASE = "Key-Hygiene-phrase7"
PASSPHRASE_VAR = "MAILCLI_CLIENT_KEY_PASSPHRASE"


def forms(secret: str) -> list[str]:
    """The secret and the encodings a leak could take (base64, the URL's userinfo)."""
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        f"{PROXY_USER}:{secret}",
        base64.b64encode(f"\0{PROXY_USER}\0{secret}".encode()).decode(),
    ]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"{form!r} in:\n{text}"


def mail_secrets(mailbox: Mailbox) -> tuple[str, str]:
    """The mail password and its AUTH PLAIN response."""
    plain = base64.b64encode(f"\0{mailbox.user}\0{mailbox.password}".encode()).decode()
    return mailbox.password, plain


def all_files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


class Gate:
    """A shell command that writes its pid to NAME.pid, then waits for a line on the
    fifo NAME.go: the test looks at the running child (`wait`), then lets it go on."""

    def __init__(self, directory: Path, name: str) -> None:
        self.pid_file = directory / f"{name}.pid"
        self.fifo = directory / f"{name}.go"
        os.mkfifo(self.fifo)

    @property
    def command(self) -> str:
        pid = self.pid_file
        return f"echo $$ > {pid}.new && mv {pid}.new {pid} && read _ < {self.fifo}"

    def wait(self, mailcli: subprocess.Popen[bytes], timeout: float = 60) -> int:
        """The child's pid, once it is waiting (fails if mailcli ends before it)."""
        deadline = time.monotonic() + timeout
        while not self.pid_file.exists():
            if mailcli.poll() is not None:
                _, stderr = mailcli.communicate()
                raise AssertionError(f"mailcli ended before the gate: {stderr.decode()}")
            assert time.monotonic() < deadline, "the gate was never reached"
            time.sleep(0.02)
        return int(self.pid_file.read_text())

    def release(self) -> None:
        with self.fifo.open("w") as fifo:
            fifo.write("go\n")


def argv_of_every_process() -> str:
    """Every process's whole command line (ps cuts them at its width), one a line, but
    microsocks', whose -P PASSWORD the test gave it."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:  # it ended meanwhile
            continue
        if not argv[0].endswith("microsocks"):
            lines.append(" ".join(argv))
    assert any("mailcli" in line for line in lines), lines  # it sees mailcli itself
    return "\n".join(lines)


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
    return dict(entry.partition("=")[::2] for entry in raw.split("\0") if entry)


def inspect_child(gate: Gate, mailcli: subprocess.Popen[bytes], *secrets: str) -> None:
    """At the gate: no secret in any argv, nor in the child's environment (its names
    included: no passphrase variable at all)."""
    pid = gate.wait(mailcli)
    try:
        assert_no_secret(argv_of_every_process(), *secrets)
        environ = environment_of(pid)
        assert "PATH" in environ  # it was read
        assert PASSPHRASE_VAR not in environ and "MAILCLI_PASSWORD" not in environ
        assert_no_secret("\n".join(f"{k}={v}" for k, v in environ.items()), *secrets)
    finally:
        gate.release()


@pytest.fixture(scope="module")
def auth_proxy() -> Iterator[Microsocks]:
    require_microsocks()
    with Microsocks(PROXY_USER, PROXY_PASSWORD) as server:
        yield server


@dataclass
class Setup:
    """One account through the proxy, its key encrypted, its password from a command;
    `home` is where mailcli writes (state, queue, log), the config lies outside it."""

    root: Path
    home: Path
    mailbox: Mailbox
    cert: Path
    key: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def log(self) -> Path:
        return self.home / "mailcli.log"

    def env(self, **extra: str) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILCLI_")}
        environ.pop("ALL_PROXY", None)
        return environ | {
            "HOME": str(self.home),
            "XDG_STATE_HOME": str(self.home / "state"),
            "MAILCLI_CONFIG": str(self.config),
            **extra,
        }

    def write_config(self, proxy: str, smtp_port: int, pop3_port: int, ca: Path, pw: str) -> None:
        """`pw`: the password_command (the mailbox password is never in the config)."""
        server = (
            f'host = "{HOST}"\ncafile = "{ca}"\n'
            + (f'proxy = "{proxy}"\n' if proxy else "")
            + f'client_cert = "{self.cert}"\nclient_key = "{self.key}"\n'
        )
        self.config.write_text(
            f'default_account = "px"\n[accounts.px]\nfrom = "{self.mailbox.address}"\n'
            f'user = "{self.mailbox.user}"\npassword_command = "{pw}"\nlog = "{self.log}"\n'
            f"[accounts.px.smtp]\nport = {smtp_port}\n{server}"
            f"[accounts.px.pop3]\nport = {pop3_port}\n{server}"
        )


@pytest.fixture
def setup(tmp_path: Path, mailbox: Mailbox) -> Iterator[Setup]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)  # the isolated HOME, if a fixture made it
    directory = make_workdir("hygiene-certs-")
    cert = ClientCA(directory).issue(mailbox.user)
    key = encrypt_key(cert.key_pem, tmp_path / "encrypted-key.pem", PASSPHRASE)
    yield Setup(tmp_path, home, mailbox, cert.cert_pem, key)
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


def proxy_url(proxy_port: int, password: str = PROXY_PASSWORD) -> str:
    return f"socks5://{PROXY_USER}:{password}@{HOST}:{proxy_port}"


def password_file(setup: Setup) -> Path:
    path = setup.root / "mail-password"
    path.write_text(setup.mailbox.password + "\n")
    return path


def run_gated(setup: Setup, args: list[str], gates: list[Gate], env: dict[str, str]) -> str:
    """mailcli ARGS as a process, each gate inspected in turn; its stdout and stderr."""
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(setup.mailbox))
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


def store_passphrase(secret_service: SecretService, env: dict[str, str], key: Path) -> None:
    stored = run_process(
        ["password", "set", f"client-key:{key}"], env=env, input=f"{PASSPHRASE}\n".encode()
    )
    assert stored.returncode == 0, stored.stderr


@pytest.fixture(params=["environment", "keyring"])
def passphrase_env(request: pytest.FixtureRequest, setup: Setup) -> dict[str, str]:
    """mailcli's environment, the key's passphrase in PASSPHRASE_VAR or in the keyring."""
    if request.param == "environment":
        return setup.env(**{PASSPHRASE_VAR: PASSPHRASE})
    service: SecretService = request.getfixturevalue("secret_service")
    env = service.subprocess_env(setup.env())
    env["XDG_STATE_HOME"] = str(setup.home / "state")  # mailcli's files stay in home
    store_passphrase(service, env, setup.key)
    return env


def test_fetch_through_the_proxy_to_an_mda(
    setup: Setup,
    passphrase_env: dict[str, str],
    dovecot: Dovecot,
    postfix: Postfix,
    auth_proxy: Microsocks,
) -> None:
    setup.mailbox.drop(numbered_message(1))
    asking, mda = Gate(setup.root, "password-command"), Gate(setup.root, "mda")
    delivered = setup.root / "delivered"
    ca = dovecot.certs.ca_pem
    command = f"{asking.command} && cat {password_file(setup)}"
    setup.write_config(
        proxy_url(auth_proxy.port), postfix.submission_port, dovecot.pop3_port, ca, command
    )
    fetch = ["fetch", "--to", f"mda:{mda.command} && cat > {delivered}"]
    output = run_gated(setup, fetch, [asking, mda], passphrase_env)
    assert f"== via socks5 {HOST}:{auth_proxy.port}\n" in output
    assert delivered.read_bytes().endswith(numbered_message(1).split(b"\n\n", 1)[1])
    assert setup.log.exists() and any((setup.home / "state" / "mailcli").rglob("*"))
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(setup.mailbox))
    assert_no_secret(all_files_text(setup.home), *secrets)


def test_send_through_the_proxy(
    setup: Setup, dovecot: Dovecot, postfix: Postfix, auth_proxy: Microsocks
) -> None:
    asking = Gate(setup.root, "password-command")
    ca = postfix.certs.ca_pem
    command = f"{asking.command} && cat {password_file(setup)}"
    setup.write_config(
        proxy_url(auth_proxy.port), postfix.submission_port, dovecot.pop3_port, ca, command
    )
    address = setup.mailbox.address
    send = ["send", "--to", address, "--subject", "hygiene", "--body", "x"]
    output = run_gated(setup, send, [asking], setup.env(**{PASSPHRASE_VAR: PASSPHRASE}))
    assert f"== via socks5 {HOST}:{auth_proxy.port}\n" in output
    postfix.wait_for_delivery(setup.mailbox.user)
    assert setup.log.exists()
    secrets = (PROXY_PASSWORD, PASSPHRASE, *mail_secrets(setup.mailbox))
    assert_no_secret(all_files_text(setup.home), *secrets)


def run_plain(setup: Setup, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """mailcli --debug --trace ARGS as a process: its status, stdout and stderr."""
    environ = env if env is not None else setup.env(**{PASSPHRASE_VAR: PASSPHRASE})
    done = run_process(["--debug", "--trace", *args], env=environ, input=b"")
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def configure(setup: Setup, proxy: str, dovecot: Dovecot, smtp: int, pop3: int = 0) -> None:
    """The account through `proxy` to SMTP port `smtp` and POP3 port `pop3` (0: Dovecot's)."""
    command = f"cat {password_file(setup)}"
    pop3 = pop3 or dovecot.pop3_port
    setup.write_config(proxy, smtp, pop3, dovecot.certs.ca_pem, command)


def test_a_message_queued_while_the_proxy_is_down(
    setup: Setup, dovecot: Dovecot, postfix: Postfix
) -> None:
    """sendmail queues it; neither the entry nor `queue list`/`queue run` holds the
    proxy password, though the entry records why it waits (the proxy)."""
    down = free_port()
    configure(setup, proxy_url(down), dovecot, postfix.submission_port)
    environ = setup.env(**{PASSPHRASE_VAR: PASSPHRASE})
    queued = run_process(
        ["sendmail", "-i", setup.mailbox.address], env=environ, input=b"Subject: q\n\nq\n"
    )
    assert queued.returncode == 0, queued.stderr
    entries = list((setup.home / "state" / "mailcli" / "queue").rglob("*.json"))
    assert len(entries) == 1, entries
    assert f"{HOST}:{down}" in entries[0].read_text()  # the proxy named, by its address
    assert_no_secret(all_files_text(setup.home), PROXY_PASSWORD, PASSPHRASE)
    for command, status in ((["queue", "list", "--json"], 0), (["queue", "run"], 75)):
        code, output = run_plain(setup, *command)
        assert code == status, output
        assert f"{HOST}:{down}" in output, output  # the error, with the proxy's address
        assert_no_secret(output, PROXY_PASSWORD, PASSPHRASE)
    assert_no_secret(all_files_text(setup.home), PROXY_PASSWORD, PASSPHRASE)
    assert_no_secret(queued.stderr.decode(), PROXY_PASSWORD, PASSPHRASE)


FAILURES = ["wrong-password", "refused-target", "no-proxy", "not-socks", "silent"]


@pytest.mark.parametrize("command", ["send", "stat"])
@pytest.mark.parametrize("failure", FAILURES)
def test_every_proxy_failure_names_no_password(
    setup: Setup,
    dovecot: Dovecot,
    postfix: Postfix,
    auth_proxy: Microsocks,
    command: str,
    failure: str,
) -> None:
    """The message of each failure, its --debug traceback and the transcript. "silent":
    a proxy that takes the connection and never answers (--timeout 1)."""
    wrong, closed, down = "Wrong-Hygiene-pw3", free_port(), free_port()
    with socket.create_server((HOST, 0)) as silent:
        proxy, port, status, message = {
            "wrong-password": (proxy_url(auth_proxy.port, wrong), 0, 77, "the SOCKS5 proxy"),
            "refused-target": (proxy_url(auth_proxy.port), closed, 69, "connection refused"),
            "no-proxy": (proxy_url(down), 0, 69, "cannot connect to the SOCKS5 proxy"),
            "not-socks": (proxy_url(dovecot.pop3_port), 0, 69, "SOCKS5"),
            "silent": (proxy_url(silent.getsockname()[1]), 0, 75, "did not answer"),
        }[failure]
        configure(setup, proxy, dovecot, port or postfix.submission_port, port)
        args = ["send", "--to", setup.mailbox.address, "--body", "x"]
        args = args if command == "send" else ["stat"]
        timeout = ["--timeout", "1"] if failure == "silent" else []  # it never answers
        code, output = run_plain(setup, *args, *timeout)
    assert code == status, output
    assert "Traceback" in output, output  # --debug: the exception chain is shown too
    error = next(line for line in output.splitlines() if line.startswith("mailcli: error:"))
    assert message in error, output
    assert_no_secret(output, PROXY_PASSWORD, wrong, PASSPHRASE)


def test_a_wrong_passphrase_is_78_and_not_shown(
    setup: Setup, dovecot: Dovecot, postfix: Postfix, auth_proxy: Microsocks
) -> None:
    wrong = "Wrong-Key-phrase5"
    configure(setup, proxy_url(auth_proxy.port), dovecot, postfix.submission_port)
    for command in (["stat"], ["send", "--to", setup.mailbox.address, "--body", "x"]):
        code, output = run_plain(setup, *command, env=setup.env(**{PASSPHRASE_VAR: wrong}))
        assert code == 78, output
        assert "wrong passphrase" in output, output
        assert_no_secret(output, PROXY_PASSWORD, wrong, PASSPHRASE)


def test_what_mailcli_reports_about_the_account(
    setup: Setup, dovecot: Dovecot, postfix: Postfix, auth_proxy: Microsocks
) -> None:
    """account show/list and check (through the proxy) name the proxy as
    socks5://USER:***@HOST:PORT, never with its password or the passphrase."""
    configure(setup, proxy_url(auth_proxy.port), dovecot, postfix.submission_port)
    shown = f"socks5://{PROXY_USER}:***@{HOST}:{auth_proxy.port}"
    reports = (
        ["account", "show"],
        ["account", "show", "--json"],
        ["account", "list"],
        ["check", "smtp"],
        ["check", "pop3", "--json"],
    )
    for command in reports:
        code, output = run_plain(setup, *command)
        assert code == 0, output
        assert_no_secret(output, PROXY_PASSWORD, PASSPHRASE, *mail_secrets(setup.mailbox))
        assert command[-1] == "list" or shown in output, output


def child_executions(trace: Path) -> list[str]:
    """strace's execve lines (-f -v: argv and environment in full) of every program
    started under the first one, which is mailcli itself (its environment is the test's)."""
    lines = [line for line in trace.read_text().splitlines() if " execve(" in line]
    assert lines, "strace saw no execve"
    top = lines[0].split(" ", 1)[0]
    return [line for line in lines if line.split(" ", 1)[0] != top]


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
