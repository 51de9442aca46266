"""A cron-like host for sendmail mode: what a cron job's mail goes through.

`CronHost` is a HOME with a mailcli config (one account, `cron`, submitting to the test
Postfix with STARTTLS, its password from `password_command`, the alias root -> the
mailbox), and a PATH whose `sendmail` is a link to mailcli. Its commands run as cron runs
a job: `env -i`-style variables (HOME, LOGNAME, PATH, SHELL only), no TTY, no D-Bus."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .certs import Certs
from .fixtures import Mailbox
from .postfix import Postfix


class CronHost:
    """A HOME with a config file, and a PATH whose `sendmail` is a link to mailcli."""

    def __init__(self, root: Path, postfix: Postfix, certs: Certs, box: Mailbox) -> None:
        self.home = root / "home"
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        (self.bin / "sendmail").symlink_to(Path(sys.executable).with_name("mailcli"))
        self.config = self.home / ".config" / "mailcli" / "config.toml"
        self.config.parent.mkdir(parents=True)
        self.postfix, self.certs, self.box = postfix, certs, box
        self.write_config(postfix.submission_port)

    def write_config(self, port: int) -> None:
        box = self.box
        self.config.write_text(f"""\
default_account = "cron"

[accounts.cron]
from = "Cron on host <{box.address}>"
user = "{box.user}"
domain = "example.test"
password_command = "echo {box.password}"

[accounts.cron.smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
cafile = "{self.certs.ca_pem}"

[aliases]
root = "{box.address}"
""")

    @property
    def env(self) -> dict[str, str]:
        """What cron gives a job: HOME, LOGNAME, PATH, SHELL and nothing else."""
        return {
            "HOME": str(self.home),
            "LOGNAME": "root",
            "SHELL": "/bin/sh",
            "PATH": f"{self.bin}:/usr/bin:/bin",
        }

    def run(self, *argv: str, input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            list(argv), input=input, capture_output=True, env=self.env, timeout=60, check=False
        )

    def sendmail(self, *args: str, input: bytes) -> subprocess.CompletedProcess[bytes]:
        return self.run(str(self.bin / "sendmail"), *args, input=input)

    def mailcli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return self.run(sys.executable, "-m", "mailcli", *args)

    def queue_dir(self) -> Path:
        return self.home / ".local" / "state" / "mailcli" / "queue"
