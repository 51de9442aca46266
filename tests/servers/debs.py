"""Servers that conflict with the installed ones as packages, run from their .debs.

scripts/setup downloads the .debs (and the libraries this machine lacks) into
.cache/debs; `unpack` extracts a server's set once into .cache/NAME, with /lib merged
into /usr/lib (Debian's /lib is a link to usr/lib, so an overlay of the unpacked /usr
must carry both). The launchers run the daemons in private mount and PID namespaces
(`NAMESPACES`): read-only overlays put the unpacked /usr over the real one and their
own config over the unpacked /etc, and a tmpfs covers /run. The shell that starts the
daemons is the namespace's init: when unshare is killed it takes the shell, and the
kernel every daemon, even those that daemonize into their own sessions.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from .certs import Certs
from .managed import ManagedServer
from .ports import HOST, free_port, wait_for_greeting
from .procs import kill_group, make_workdir, read_log

REPOSITORY = Path(__file__).resolve().parents[2]
DEBS = REPOSITORY / ".cache" / "debs"
NAMESPACES = ["unshare", "--mount", "--pid", "--fork", "--kill-child"]
MOUNTS = """\
set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir={unpacked}/usr:/usr /usr
mount -t overlay overlay -o lowerdir={config}:{unpacked}/etc:/etc /etc
mount -t tmpfs tmpfs /run
"""


def missing(packages: tuple[str, ...]) -> str | None:
    """Why these packages cannot run here (None: they can)."""
    absent = [p for p in packages if not list(DEBS.glob(f"{p}_*.deb"))]
    if absent:
        return f"not in {DEBS} (scripts/setup downloads them): {', '.join(absent)}"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    return None


def unpack(name: str, packages: tuple[str, ...]) -> Path:
    """.cache/NAME with every package extracted (once). Parallel test workers may start
    the first server of a kind at once: a lock per name lets one unpack, the others then
    find it done."""
    unpacked = REPOSITORY / ".cache" / name
    unpacked.parent.mkdir(parents=True, exist_ok=True)
    with unpacked.with_name(f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (unpacked / ".unpacked").exists():
            _extract(unpacked, packages)
    return unpacked


def _extract(unpacked: Path, packages: tuple[str, ...]) -> None:
    staging = unpacked.with_name(f"{unpacked.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for package in packages:
        (deb,) = DEBS.glob(f"{package}_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
    if (staging / "lib").is_dir():
        shutil.copytree(staging / "lib", staging / "usr" / "lib", symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(staging / "lib")
    (staging / ".unpacked").touch()
    shutil.rmtree(unpacked, ignore_errors=True)
    staging.rename(unpacked)


class SystemUser(NamedTuple):
    """A daemon's system user, as its package's postinst would make it; its group is
    added too unless /etc/group has it."""

    name: str
    uid: int
    home: str
    group: str = ""  # default: a group of the user's own name and uid
    gid: int = 0


def passwd_with(etc: Path, users: Iterable[SystemUser]) -> None:
    """/etc/passwd and /etc/group for the overlay: the real ones plus `users`."""
    passwd = Path("/etc/passwd").read_text()
    groups = Path("/etc/group").read_text()
    for user in users:
        group, gid = (user.group, user.gid) if user.group else (user.name, user.uid)
        if f"\n{user.name}:" not in f"\n{passwd}":
            passwd += f"{user.name}:x:{user.uid}:{gid}::{user.home}:/usr/sbin/nologin\n"
        if f"\n{group}:" not in f"\n{groups}":
            groups += f"{group}:x:{gid}:\n"
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(groups)


class UnpackedServer(ManagedServer):
    """What every server run from its unpacked .debs shares: a work directory, one
    namespace whose init shell runs `daemons()` after the overlays, the output of that
    shell in `output.log`, readiness by `wait_ready`, and a stop that kills the namespace
    (unshare --fork ignores SIGTERM, and nothing here keeps state worth a clean stop).
    A server says what it is (`name`, `packages`) and writes its files (`write_files`)."""

    name: str  # .cache/NAME, the work directory's prefix, the start-up error
    packages: tuple[str, ...]

    def __init__(self) -> None:
        self.root = make_workdir(f"{self.name.lower()}-")
        self._process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        """The daemons' output (what they would send to syslog)."""
        return read_log(self.root / "output.log")

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        unpacked = unpack(self.name.lower(), self.packages)
        self.write_files(unpacked)
        script = MOUNTS.format(unpacked=unpacked, config=self.root / "etc") + self.daemons()
        with (self.root / "output.log").open("wb") as output:
            self._process = subprocess.Popen(
                [*NAMESPACES, "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        try:
            self.wait_ready(self._alive)
        except Exception as error:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.diagnostics()}") from error

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        kill_group(process.pid)  # unshare's end ends the PID namespace and every daemon
        process.wait()

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def diagnostics(self) -> str:
        return self.log()

    def write_files(self, unpacked: Path) -> None:
        raise NotImplementedError

    def daemons(self) -> str:
        """The shell lines that start the daemons, after the overlays."""
        raise NotImplementedError

    def wait_ready(self, alive: Callable[[], bool]) -> None:
        raise NotImplementedError


class UnpackedPop3Server(UnpackedServer):
    """A POP3 server on two loopback ports, STLS and implicit TLS, with the session's
    certificate and `settings` added to its configuration (in the server's own syntax);
    ready when both ports greet."""

    host = HOST

    def __init__(self, certs: Certs, settings: str = "") -> None:
        super().__init__()
        self.certs = certs
        self.settings = settings
        self.pop3_port = free_port()
        self.pop3s_port = free_port()

    def wait_ready(self, alive: Callable[[], bool]) -> None:
        wait_for_greeting(self.pop3_port, b"+OK", alive=alive)
        wait_for_greeting(self.pop3s_port, b"+OK", tls=self.certs.client_context(), alive=alive)
