"""Secret hygiene helpers (tests/robustness/test_secrets_*): the secrets a run is given,
the forms a leak of one could take, and ways to look for them where mailcli leaves
traces: every process's argv, a child's environment while it runs (`Gate`: a shell
command that waits on a fifo until the test has looked), strace's execve lines, files.

`Setup` is one account through a SOCKS5 proxy that wants `PROXY_PASSWORD`, its client
key encrypted with `PASSPHRASE`, its mail password from a password_command; mailcli
writes under `home` (state, queue, the log), the config lies outside it.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .dovecot import Dovecot
from .fixtures import Mailbox
from .ports import HOST
from .procs import make_workdir
from .tlstrust import ClientCA, encrypt_key

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


@contextmanager
def make_setup(root: Path, mailbox: Mailbox) -> Iterator[Setup]:
    """A `Setup` in `root` (a test's tmp_path) with a client certificate for `mailbox`."""
    home = root / "home"
    home.mkdir(exist_ok=True)  # the isolated HOME, if a fixture made it
    directory = make_workdir("hygiene-certs-")
    try:
        cert = ClientCA(directory).issue(mailbox.user)
        key = encrypt_key(cert.key_pem, root / "encrypted-key.pem", PASSPHRASE)
        yield Setup(root, home, mailbox, cert.cert_pem, key)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def proxy_url(proxy_port: int, password: str = PROXY_PASSWORD) -> str:
    return f"socks5://{PROXY_USER}:{password}@{HOST}:{proxy_port}"


def password_file(setup: Setup) -> Path:
    path = setup.root / "mail-password"
    path.write_text(setup.mailbox.password + "\n")
    return path


def configure(setup: Setup, proxy: str, dovecot: Dovecot, smtp: int, pop3: int = 0) -> None:
    """The account through `proxy` to SMTP port `smtp` and POP3 port `pop3` (0: Dovecot's)."""
    command = f"cat {password_file(setup)}"
    pop3 = pop3 or dovecot.pop3_port
    setup.write_config(proxy, smtp, pop3, dovecot.certs.ca_pem, command)


def child_executions(trace: Path) -> list[str]:
    """strace's execve lines (-f -v: argv and environment in full) of every program
    started under the first one, which is mailcli itself (its environment is the test's)."""
    lines = [line for line in trace.read_text().splitlines() if " execve(" in line]
    assert lines, "strace saw no execve"
    top = lines[0].split(" ", 1)[0]
    return [line for line in lines if line.split(" ", 1)[0] != top]
