"""A throwaway Courier POP3 server (courier-pop 1.0.16, Debian bookworm) on 127.0.0.1.

Courier conflicts with Dovecot as a package, so it is never installed: it runs from its
unpacked .debs in private namespaces (see debs.py; its paths are compiled in:
/usr/lib/courier, /etc/courier, /run/courier).

The configuration is Debian's /etc/courier/pop3d and pop3d-ssl as shipped (MAXPERIP=4,
STLS offered, USER and PLAIN/LOGIN before it, authpam) with only the ports, the address,
the certificate and the log moved, plus ``settings`` appended (a later assignment wins):
the hardened variant's fixes. ``pop3_port`` is 110-style (STLS), ``pop3s_port`` 995-style.
The log (``log()``) is the daemons' output, what courierlogger would send to syslog.
"""

from __future__ import annotations

import signal
from pathlib import Path

from . import debs
from .ports import HOST
from .procs import make_workdir

PACKAGES = (
    "courier-pop",
    "courier-base",
    "courier-authlib",
    "courier-authdaemon",
    "libcourier-unicode4",
    "libltdl7",
)
COURIER_UID = 5101  # the system user couriertls switches to (Debian's postinst makes it)

# Debian runs these through /usr/sbin/pop3d and pop3d-ssl with courierlogger; here they
# stay in the foreground under one shell, the namespace's init (see debs.py).
DAEMONS = """\
mkdir -p /run/courier/authdaemon
set -a
. /etc/courier/authdaemonrc
. /etc/courier/pop3d
. /etc/courier/pop3d-ssl
set +a
/usr/lib/courier/courier-authlib/authdaemond &
couriertcpd -address=$ADDRESS -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS \\
    $PORT /usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d \\
    $MAILDIRPATH &
POP3_TLS=1 POP3_STARTTLS=NO POP3_TLS_REQUIRED=0 \\
couriertcpd -address=$SSLADDRESS -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS \\
    $SSLPORT $COURIERTLS -server -tcpd -user=courier \\
    /usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d \\
    $MAILDIRPATH &
wait
"""


def missing() -> str | None:
    """Why Courier cannot run here (None: it can)."""
    return debs.missing(PACKAGES)


class Courier(debs.UnpackedPop3Server):
    """Courier POP3 with Debian's defaults plus ``settings`` (shell assignments for
    /etc/courier/pop3d and pop3d-ssl)."""

    name = "Courier"
    packages = PACKAGES

    def daemons(self) -> str:
        return DAEMONS

    def write_files(self, unpacked: Path) -> None:
        etc = self.root / "etc"
        (etc / "courier").mkdir(parents=True)
        pem = self.root / "pop3d.pem"
        pem.write_bytes(self.certs.key_pem.read_bytes() + self.certs.cert_pem.read_bytes())
        pem.chmod(0o644)  # couriertls reads it as user courier
        moved = (
            f"PORT={self.pop3_port}\nADDRESS={HOST}\nSSLPORT={self.pop3s_port}\n"
            f"SSLADDRESS={HOST}\nTLS_CERTFILE={pem}\nTLS_CACHEFILE=\n"
        )
        for name in ("pop3d", "pop3d-ssl"):
            shipped = (unpacked / "etc" / "courier" / name).read_text()
            (etc / "courier" / name).write_text(f"{shipped}\n{moved}{self.settings}\n")
        debs.passwd_with(etc, [debs.SystemUser("courier", COURIER_UID, "/var/lib/courier")])


if __name__ == "__main__":  # a manual look: python -m tests.servers.courier
    from .certs import make_certs

    with Courier(make_certs(make_workdir("courier-certs-"), "courier")) as server:
        print(f"Courier POP3 on {HOST}:{server.pop3_port} (STLS), :{server.pop3s_port} (TLS)")
        signal.pause()
