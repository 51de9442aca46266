"""A throwaway Sendmail 8.17.1.9 (Debian bookworm's sendmail-bin) on 127.0.0.1.

Sendmail conflicts with Postfix as a package, so it is never installed: scripts/setup
keeps its .debs (sendmail-bin, sendmail-base, sendmail-cf, and liblockfile1 and m4,
which this machine lacks) in .cache/debs and tests/servers/debs.py unpacks them once
into .cache/sendmail. The daemon runs from there in private mount and PID namespaces
(see debs.py), as root like Debian's init script, in the foreground (``-bD``).

The configuration is built the way Debian's sendmailconfig builds it: Debian's
sendmail.mc as shipped (cf/debian/sendmail.mc: PrivacyOptions
needmailhelo,needexpnhelo,needvrfyhelo,..., greet_pause, conncontrol and ratecontrol,
access_db, delay_checks, ConnectionRateThrottle 15), Debian's access file as its
update_db installs it (``Connect:127 RELAY``, no greet pause and no connection limits
for 127.*), Debian's starttls.m4 as its update_tlsm4 writes it (its file names, DH
parameters made as its update_tls makes them), then ``m4``, ``makemap`` and
``newaliases``, all inside the namespace. What differs from Debian's defaults, and why:

- the MTA and MSP listeners (127.0.0.1:25 and :587) move to free loopback ports, so
  servers of parallel tests never collide;
- ``include(`/etc/mail/tls/starttls.m4')``, the step Debian's update_tls asks the admin
  to take to turn STARTTLS on, with this session's certificate in Debian's file names
  (Debian would make a self-signed one): without it there is no TLS to audit;
- ``settings`` (mc lines, e.g. the hardened variant's fixes) go before the mailers;
- no DNS and nothing leaves the machine: the hosts file names this host
  ``mail.sendmail.test`` (Sendmail wants a qualified name for itself, and would sleep
  and retry without one), /etc/mail/service.switch is Debian's ``service.switch-nodns``
  (hosts from files only), resolv.conf points at 127.0.0.1, and the daemon only queues
  (``-odq``, no ``-q``): no queue run ever delivers, locally or to a relay. Accepted mail
  stays in ``mqueue`` (``queued()``);
- local mail: ``sendmail.test`` is in local-host-names, the user ``audit`` exists;
- the log: Sendmail logs only to syslog, so /dev in the namespace is a tmpfs with the
  device nodes bind-mounted from the real /dev, and a small sink on /dev/log writes
  each message to ``maillog`` (``maillog()``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from . import debs
from .certs import Certs
from .ports import HOST, free_port, wait_for_greeting
from .procs import make_workdir, read_log, wait_for_text

PACKAGES = ("sendmail-bin", "sendmail-base", "sendmail-cf", "liblockfile1", "m4")
DOMAIN = "sendmail.test"
AUDIT_USER = "audit"
UIDS = {"smmta": 5401, "smmsp": 5402, AUDIT_USER: 5403}
# The fixes verified on Debian's Sendmail, as sendmail.mc lines: Debian's PrivacyOptions
# plus noexpn,novrfy (VRFY and EXPN told users apart); only ECDHE with AEAD ciphers
# (OpenSSL's defaults let CBC-SHA1 through); AUTH offered only inside TLS (the default
# mechanisms DIGEST-MD5 and CRAM-MD5 are offered in clear, and AuthOptions p hides only
# those open to passive attack, so PLAIN and LOGIN with p).
PRIVACY_FLAGS = (
    "needmailhelo,needexpnhelo,needvrfyhelo,restrictqrun,restrictexpand,nobodyreturn,"
    "authwarnings,noexpn,novrfy"
)
HARDENED = (
    f"define(`confPRIVACY_FLAGS', `{PRIVACY_FLAGS}')dnl",
    "define(`confCIPHER_LIST', `ECDHE+AESGCM:ECDHE+CHACHA20')dnl",
    "define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl",
    "define(`confAUTH_OPTIONS', `p')dnl",
)

# A syslog sink on /dev/log: each datagram as a line of the log file.
SYSLOG_SINK = """\
import socket, sys
sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sink.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as log:
    while True:
        log.write(sink.recv(65536).rstrip(b"\\0\\n") + b"\\n")
"""

DAEMON = """\
mkdir /run/hostdev
mount --bind /dev /run/hostdev
mount -t tmpfs -o mode=755 tmpfs /dev
for node in null zero full random urandom tty; do
  touch /dev/$node && mount --bind /run/hostdev/$node /dev/$node
done
mount --bind {root}/mail /etc/mail
mount --bind {root}/spool /var/spool
mount -t overlay overlay -o lowerdir={root}/varlib:/var/lib /var/lib
mount --bind {root}/varlib/sendmail /var/lib/sendmail
mkdir -p /run/sendmail/mta
chown smmta:smmsp /run/sendmail/mta
{python} {root}/syslog_sink.py {root}/maillog &
while [ ! -S /dev/log ]; do sleep 0.05; done
cd /etc/mail
openssl dsaparam -out tls/sendmail-common.prm 2048 2>/dev/null
openssl dhparam -dsaparam -in tls/sendmail-common.prm >> tls/sendmail-common.prm 2>/dev/null
chgrp smmsp tls/sendmail-common.prm && chmod 0640 tls/sendmail-common.prm
perl /usr/share/sendmail/update_tlsm4 >/dev/null
m4 sendmail.mc > sendmail.cf
/usr/libexec/sendmail/makemap hash access < access
/usr/libexec/sendmail/sendmail -bi
exec /usr/libexec/sendmail/sendmail -L sm-mta -bD -odq
"""
# Debian's access file's relaying for the local host (IPv4 and IPv6).
LOOPBACK_RELAY = ("Connect:127\t\t\t\tRELAY", "Connect:IPv6:::1\t\tRELAY")
STARTTLS = "include(`/etc/mail/tls/starttls.m4')dnl"
MAILERS = "dnl # Default Mailer setup"


def missing() -> str | None:
    """Why it cannot run here (None: it can)."""
    return debs.missing(PACKAGES)


class Sendmail(debs.UnpackedServer):
    """Sendmail with Debian's defaults (TLS turned on the Debian way) plus ``settings``
    (sendmail.mc lines, e.g. ``define(`confCIPHER_LIST', `...')dnl``), less the lines of
    Debian's access file in ``access_without``."""

    name = "Sendmail"
    packages = PACKAGES
    host = HOST
    domain = DOMAIN
    audit_address = f"{AUDIT_USER}@{DOMAIN}"

    def __init__(
        self, certs: Certs, settings: Iterable[str] = (), access_without: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self.certs = certs
        self.settings = tuple(settings)
        self.access_without = tuple(access_without)
        self.smtp_port = free_port()
        self.msp_port = free_port()

    def maillog(self) -> str:
        """What Sendmail logged so far; the sink writes a moment later (``wait_for_log``)."""
        return read_log(self.root / "maillog")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` appears in the maillog; return the whole log."""
        return wait_for_text(self.maillog, text, timeout, "Sendmail's maillog")

    def queued(self) -> list[Path]:
        """The queue's control files (one per accepted message)."""
        return sorted((self.root / "spool" / "mqueue").glob("qf*"))

    def diagnostics(self) -> str:
        return f"{self.log()}\n{self.maillog()}"

    def daemons(self) -> str:
        return DAEMON.format(root=self.root, python=sys.executable)

    def wait_ready(self, alive: Callable[[], bool]) -> None:
        wait_for_greeting(self.smtp_port, b"220 ", alive=alive, timeout=60.0)

    def write_files(self, unpacked: Path) -> None:
        etc, mail = self.root / "etc", self.root / "mail"
        etc.mkdir()
        shutil.copytree(unpacked / "etc" / "mail", mail, symlinks=True)
        self._write_mail_settings(unpacked, mail)
        self._write_tls(mail / "tls")
        # Owners and modes as Debian's update_sys sets them.
        smmta, smmsp = UIDS["smmta"], UIDS["smmsp"]
        for directory, owner, mode in (
            ("spool/mqueue", smmta, 0o2750),
            ("varlib/sendmail", smmta, 0o755),
            ("varlib/sendmail/host_status", 0, 0o2755),
        ):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
            os.chown(self.root / directory, owner, smmsp)
            (self.root / directory).chmod(mode)
        os.chown(mail, smmta, smmsp)
        (self.root / "syslog_sink.py").write_text(SYSLOG_SINK)
        (etc / "hosts").write_text(
            f"127.0.0.1\tmail.{DOMAIN} {DOMAIN} {socket.gethostname()} localhost\n::1\tlocalhost\n"
        )
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        debs.passwd_with(
            etc,
            [
                debs.SystemUser(user, uid, "/var/lib/sendmail" if user != AUDIT_USER else "/")
                for user, uid in UIDS.items()
            ],
        )

    def _write_mail_settings(self, unpacked: Path, mail: Path) -> None:
        cf = unpacked / "usr" / "share" / "sendmail" / "cf"
        (mail / "sendmail.mc").write_text(self._mc((cf / "debian" / "sendmail.mc").read_text()))
        access = (unpacked / "usr/share/sendmail/examples/db/access").read_text()
        kept = [line for line in access.splitlines() if line not in self.access_without]
        (mail / "access").write_text("\n".join(kept) + "\n")
        shutil.copy(unpacked / "etc" / "mail" / "service.switch-nodns", mail / "service.switch")
        (mail / "local-host-names").write_text(f"localhost\n{DOMAIN}\n")
        (mail / "aliases").write_text(f"postmaster: root\nroot: {AUDIT_USER}\n")
        for name in ("trusted-users", "relay-domains", "m4/dialup.m4", "m4/provider.m4"):
            (mail / name).touch()

    def _mc(self, shipped: str) -> str:
        lines = []
        for line in shipped.splitlines():
            if "Name=MTA-v4" in line:
                line = line.replace("Port=smtp", f"Port={self.smtp_port}")
            elif "Name=MSP-v4" in line:
                line = line.replace("Port=submission", f"Port={self.msp_port}")
            elif line.startswith(MAILERS):
                lines += [STARTTLS, *self.settings]
            lines.append(line)
        return "\n".join(lines) + "\n"

    def _write_tls(self, tls: Path) -> None:
        for name, source in (
            ("sendmail-server.crt", self.certs.cert_pem),
            ("sendmail-client.crt", self.certs.cert_pem),
            ("sendmail-common.key", self.certs.key_pem),
        ):
            shutil.copy(source, tls / name)
            os.chown(tls / name, 0, UIDS["smmsp"])
            (tls / name).chmod(0o640 if name.endswith(".key") else 0o644)


if __name__ == "__main__":  # a manual look: python -m tests.servers.sendmail
    from .certs import make_certs

    with Sendmail(make_certs(make_workdir("sendmail-certs-"), "sendmail")) as server:
        print(f"Sendmail on {HOST}:{server.smtp_port} (STARTTLS); mail for {server.audit_address}")
        signal.pause()
