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

import shutil
import subprocess
from pathlib import Path

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
    """.cache/NAME with every package extracted (once)."""
    unpacked = REPOSITORY / ".cache" / name
    if (unpacked / ".unpacked").exists():
        return unpacked
    staging = unpacked.with_name(f"{name}.partial")
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
    return unpacked


def passwd_with(etc: Path, user: str, uid: int, group: str, gid: int, home: str) -> None:
    """/etc/passwd and /etc/group for the overlay: the real ones plus the daemon's
    system user (its package's postinst would make it)."""
    passwd = Path("/etc/passwd").read_text()
    groups = Path("/etc/group").read_text()
    if f"\n{user}:" not in f"\n{passwd}":
        passwd += f"{user}:x:{uid}:{gid}::{home}:/usr/sbin/nologin\n"
    if f"\n{group}:" not in f"\n{groups}":
        groups += f"{group}:x:{gid}:\n"
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(groups)
