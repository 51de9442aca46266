"""A private D-Bus session bus with gnome-keyring's Secret Service on it.

With ``env`` applied, the ``keyring`` library (in a subprocess, so its backend choice is
fresh) picks ``keyring.backends.SecretService.Keyring`` and stores secrets in a keyring
file under a private HOME: the developer's own keyring is never touched, and nothing
needs a desktop session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .managed import ManagedServer
from .procs import binary, kill_group, make_workdir, wait_until_gone

SECRETS_NAME = "org.freedesktop.secrets"

# Our own bus config: the stock session.conf would also activate services from
# /usr/share/dbus-1/services, which could start an unmanaged gnome-keyring (or anything
# else) behind our back. Here only processes we start can own names.
BUS_CONFIG = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SecretService(ManagedServer):
    """dbus-daemon plus ``gnome-keyring-daemon --components=secrets``, started by ``start()``.

    ``locked=False`` (default): the login keyring is created and unlocked with ``password``,
    so set/get work. ``locked=True``: the daemon starts without a login keyring and cannot
    create one (that needs a GUI prompt), so keyring operations fail as on a locked desktop.
    """

    def __init__(self, *, locked: bool = False, password: str = "test-keyring-pw") -> None:
        self.locked = locked
        self.password = password
        self.root = make_workdir("keyring-")
        self.bus_address = f"unix:path={self.root / 'bus'}"
        self._bus: subprocess.Popen[bytes] | None = None
        self._daemon: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Variables to overlay on os.environ for a client of this Secret Service.

        A private HOME and XDG dirs keep keyring files, and keyring's own config file,
        inside the work dir. Remove PYTHON_KEYRING_BACKEND too (see ``subprocess_env``).
        """
        home = self.root / "home"
        return {
            "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_RUNTIME_DIR": str(self.root / "runtime"),
        }

    def subprocess_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default os.environ) with ``env`` applied and any forced backend removed."""
        merged = {**(os.environ if base is None else base), **self.env}
        merged.pop("PYTHON_KEYRING_BACKEND", None)
        return merged

    def discard(self) -> None:
        self.remove()

    def start(self) -> None:
        """Start the bus, then the keyring daemon; return once the secrets name is owned."""
        self._make_dirs()
        try:
            self._bus = self._start_bus()
            self._daemon = self._start_keyring_daemon()
            self._wait_for_name(SECRETS_NAME, timeout=15)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop both daemons (keyring first, it is a bus client) and their helpers."""
        for process in (self._daemon, self._bus):
            if process is not None:
                _terminate(process)
        self._daemon = self._bus = None

    def remove(self) -> None:
        """Delete the work directory (after ``stop()``)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def freeze(self) -> None:
        """SIGSTOP the keyring daemon: the bus still routes calls, nobody answers them."""
        assert self._daemon is not None
        os.kill(self._daemon.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the keyring daemon (before ``stop()``: a stopped one ignores SIGTERM)."""
        assert self._daemon is not None
        os.kill(self._daemon.pid, signal.SIGCONT)

    def _make_dirs(self) -> None:
        for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            Path(self.env[key]).mkdir(parents=True, exist_ok=True)
        runtime = Path(self.env["XDG_RUNTIME_DIR"])
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)  # gnome-keyring refuses a runtime dir others can read
        (self.root / "bus.conf").write_text(BUS_CONFIG.format(socket=self.root / "bus"))

    def _start_bus(self) -> subprocess.Popen[bytes]:
        """Run dbus-daemon in the foreground; it prints its address once it listens."""
        config = f"--config-file={self.root / 'bus.conf'}"
        with (self.root / "dbus.log").open("wb") as log:
            process = subprocess.Popen(
                [binary("dbus-daemon"), "--nofork", "--print-address=1", config],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert process.stdout is not None
        ready = process.stdout.readline()  # blocks until it listens; empty if it died
        process.stdout.close()
        if not ready:
            process.wait()
            raise RuntimeError(f"dbus-daemon failed: {(self.root / 'dbus.log').read_text()}")
        return process

    def _start_keyring_daemon(self) -> subprocess.Popen[bytes]:
        """Run gnome-keyring-daemon in the foreground with the unlock password on stdin."""
        command = [binary("gnome-keyring-daemon"), "--foreground", "--components=secrets"]
        command += [] if self.locked else ["--unlock"]
        env = self.subprocess_env()
        with (self.root / "gnome-keyring.log").open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd=env["HOME"],
                start_new_session=True,
            )
        assert process.stdin is not None
        # --unlock reads the password up to EOF; without it, EOF just tells it no input.
        process.stdin.write(b"" if self.locked else self.password.encode())
        process.stdin.close()
        return process

    def _wait_for_name(self, name: str, timeout: float) -> None:
        """Poll the bus until ``name`` has an owner, i.e. the daemon is serving."""
        deadline = time.monotonic() + timeout
        while not self._name_has_owner(name):
            if self._daemon is not None and self._daemon.poll() is not None:
                log = (self.root / "gnome-keyring.log").read_text(errors="replace")
                raise RuntimeError(f"gnome-keyring-daemon exited: {log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not appear on the test bus")
            time.sleep(0.05)

    def _name_has_owner(self, name: str) -> bool:
        result = subprocess.run(
            [
                binary("dbus-send"),
                f"--bus={self.bus_address}",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                f"string:{name}",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0 and "boolean true" in result.stdout


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s; then make sure the process group is empty."""
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if not wait_until_gone(process.pid, timeout=5):
        kill_group(process.pid)
