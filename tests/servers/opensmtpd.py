"""A throwaway OpenSMTPD 6.8 (Debian bookworm's opensmtpd) on 127.0.0.1, cleartext.

OpenSMTPD conflicts with Postfix as a package, so it is never installed: scripts/setup
keeps its .deb in .cache/debs and tests/servers/debs.py unpacks it once into
.cache/opensmtpd. The
daemon runs in the foreground (``smtpd -d``) in private mount and PID namespaces, where
overlays put the unpacked /usr over the real one, this server's files over /etc
(smtpd.conf, aliases, mailname, a passwd/group with Debian's ``opensmtpd`` and
``opensmtpq`` users and the local user ``audit``) and its chroot directory
(/var/lib/opensmtpd/empty, compiled in) into /var/lib; tmpfs cover /var/spool (its
queue) and /run (its control socket).

The configuration is Debian's /etc/smtpd.conf as shipped (local delivery to ~/Maildir
through /etc/aliases, and ``match from local for any action "relay"``) with only the
listener moved to a loopback port: cleartext, as OpenSMTPD 6.8's TLS does not work with
OpenSSL 3. ``without`` drops lines of it (the hardened variant's fix). The log is the
daemon's output (``log()``). Nothing leaves the machine: the relay action would need
DNS, which tests never reach (a relayed message only waits in the tmpfs queue).
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from . import debs
from .ports import HOST, free_port, wait_for_greeting

PACKAGES = ("opensmtpd",)
AUDIT_USER = "audit"
UIDS = {"opensmtpd": 5301, "opensmtpq": 5302, AUDIT_USER: 5303}
RELAY_RULE = 'match from local for any action "relay"'
# The one fix verified here: Debian's default relays for every local client.
HARDENED_WITHOUT = (RELAY_RULE,)

DAEMON = """\
mount -t overlay overlay -o lowerdir={root}/varlib:/var/lib /var/lib
mount -t tmpfs tmpfs /var/spool
exec /usr/sbin/smtpd -d -f /etc/smtpd.conf
"""


def missing() -> str | None:
    """Why it cannot run here (None: it can)."""
    return debs.missing(PACKAGES)


class OpenSmtpd(debs.UnpackedServer):
    """OpenSMTPD with Debian's smtpd.conf, less the lines in ``without``."""

    name = "OpenSMTPD"
    packages = PACKAGES
    host = HOST
    audit_address = f"{AUDIT_USER}@localhost"

    def __init__(self, without: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.without = without
        self.smtp_port = free_port()

    def daemons(self) -> str:
        return DAEMON.format(root=self.root)

    def wait_ready(self, alive: Callable[[], bool]) -> None:
        wait_for_greeting(self.smtp_port, b"220 ", alive=alive)

    def write_files(self, unpacked: Path) -> None:
        etc, empty, home = self.root / "etc", self.root / "empty", self.root / "home"
        for directory in (etc, empty, home, self.root / "varlib" / "opensmtpd" / "empty"):
            directory.mkdir(parents=True)
        shutil.chown(home, UIDS[AUDIT_USER], UIDS[AUDIT_USER])
        shipped = (unpacked / "etc" / "smtpd.conf").read_text().splitlines()
        config = [
            f"listen on {HOST} port {self.smtp_port}" if line == "listen on localhost" else line
            for line in shipped
            if line not in self.without
        ]
        (etc / "smtpd.conf").write_text("\n".join(config) + "\n")
        (etc / "aliases").write_text(f"root: {AUDIT_USER}\npostmaster: root\n")
        (etc / "mailname").write_text("mail.opensmtpd.test\n")
        debs.passwd_with(
            etc,
            [
                debs.SystemUser(user, uid, str(home if user == AUDIT_USER else empty))
                for user, uid in UIDS.items()
            ],
        )


if __name__ == "__main__":  # a manual look: python -m tests.servers.opensmtpd
    with OpenSmtpd() as server:
        print(
            f"OpenSMTPD on {HOST}:{server.smtp_port} (cleartext); mail for {server.audit_address}"
        )
        signal.pause()
