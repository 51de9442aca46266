"""Servers on IPv6 loopback too, and a SOCKS5 proxy: how mailcli connects (mailcli.connect).

- `ipv6_loopback_missing()`: why ::1 cannot be used here (None: it can);
- `dual_stack_dovecot(certs)`: Dovecot listening on 127.0.0.1 and ::1 (same ports);
- `DualStackPostfix`: Postfix listening on 127.0.0.1 and [::1] (same ports), relaying
  for both loopbacks;
- `Microsocks`: Debian's microsocks on 127.0.0.1, with or without a user and password,
  optionally with an /etc/hosts of its own; its log (`log()`) names each target as the
  client asked for it (a name with socks5h);
- `with_hosts`: a command run with a private /etc/hosts;
- `ScriptedServer6`: a scripted server (tests/servers/scripted.py) listening on ::1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import missing_reason, skip_unless_ready
from .certs import Certs
from .dovecot import Dovecot
from .managed import ManagedServer
from .ports import HOST, free_port
from .postfix import Postfix
from .procs import kill_group, make_workdir, read_log, wait_for_text
from .scripted import Script, ScriptedServer
from .stack import DEFAULT_USERS

IPV6_LOOPBACK = "::1"


def ipv6_loopback_missing() -> str | None:
    """Why a server cannot listen on ::1 here (no IPv6 on the loopback), or None."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((IPV6_LOOPBACK, 0))
    except OSError as exc:
        return f"IPv6 loopback (::1) unavailable: {exc.strerror}"
    return None


def require_microsocks() -> None:
    """Skip the calling test without microsocks; fail it under CI (`require`)."""
    skip_unless_ready(missing_reason("microsocks"))


def dual_stack_dovecot(certs: Certs) -> Dovecot:
    """Dovecot (not started) whose POP3 ports listen on both loopbacks."""
    return Dovecot(certs, DEFAULT_USERS, extra_settings=f"listen = {HOST}, {IPV6_LOOPBACK}\n")


class DualStackPostfix(Postfix):
    """Postfix whose three listeners take 127.0.0.1 and [::1]: the master.cf services
    lose their host part and inet_interfaces names both addresses."""

    def __init__(self, dovecot: Dovecot) -> None:
        super().__init__(
            dovecot,
            settings={
                "inet_protocols": "all",
                "inet_interfaces": f"{HOST}, [{IPV6_LOOPBACK}]",
                "mynetworks": f"127.0.0.0/8 [{IPV6_LOOPBACK}]/128",
            },
        )

    def _with_service_options(self, master_cf: str) -> str:
        listeners = super()._with_service_options(master_cf)
        return "".join(
            line.removeprefix(f"{HOST}:") for line in listeners.splitlines(keepends=True)
        )


class Microsocks(ManagedServer):
    """microsocks on 127.0.0.1:`port`; with `user` and `password` it takes nothing else."""

    host = HOST

    def __init__(
        self, user: str | None = None, password: str | None = None, *, hosts: Path | None = None
    ) -> None:
        """`hosts`: the proxy's own /etc/hosts (`with_hosts`), for names only it knows."""
        self.user = user
        self.password = password
        self.hosts = hosts
        self.port = free_port()
        self.root: Path = make_workdir("microsocks-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "microsocks.log"

    def log(self) -> str:
        return read_log(self.log_path)

    def start(self) -> None:
        binary = shutil.which("microsocks")
        if binary is None:
            raise RuntimeError("microsocks is not installed (Debian package microsocks)")
        args = [binary, "-i", HOST, "-p", str(self.port)]
        if self.user is not None and self.password is not None:
            args += ["-u", self.user, "-P", self.password]
        if self.hosts is not None:
            args = with_hosts(self.hosts, args)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if self._process is None or self._process.poll() is not None:
                    raise RuntimeError(f"microsocks did not start:\n{self.log()}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        kill_group(process.pid)
        process.wait(timeout=10)

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until `text` is in the log (microsocks writes a line per connection)."""
        return wait_for_text(self.log, text, timeout, "microsocks' log")


def with_hosts(hosts: Path, argv: list[str]) -> list[str]:
    """`argv` run with `hosts` as its /etc/hosts: a private mount namespace (root), so a
    name can resolve to one family only, or only for the proxy, whatever the machine's
    own file says."""
    script = 'mount --make-rprivate / && mount --bind "$0" /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, str(hosts), *argv]


class ScriptedServer6(ScriptedServer):
    """A `ScriptedServer` on ::1: what a message naming an IPv6 server shows."""

    host = IPV6_LOOPBACK

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self._listener.close()  # the 127.0.0.1 one, never accepted on
        self._listener = socket.create_server((IPV6_LOOPBACK, 0), family=socket.AF_INET6)
        self.port = self._listener.getsockname()[1]
