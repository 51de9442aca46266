"""A throwaway Courier POP3 server (courier-pop 1.0.16, Debian bookworm) on 127.0.0.1.

Courier conflicts with Dovecot as a package, so it is never installed: it runs from its
unpacked .debs in private namespaces (see debs.py; its paths are compiled in:
/usr/lib/courier, /etc/courier, /run/courier).

The configuration is Debian's /etc/courier/pop3d and pop3d-ssl as shipped (MAXPERIP=4,
STLS offered, USER and PLAIN/LOGIN before it, authpam) with only the ports, the address,
the certificate and the log moved, plus ``settings`` appended (a later assignment wins):
the hardened variant's fixes. ``pop3_port`` is 110-style (STLS), ``pop3s_port`` 995-style.
The log (``log()``) is the daemons' stderr, what courierlogger would send to syslog.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

from . import debs
from .certs import Certs
from .ports import HOST, free_port, wait_for_greeting
from .procs import kill_group, make_workdir

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


class Courier:
    """Courier POP3 with Debian's defaults plus ``settings`` (shell assignments for
    /etc/courier/pop3d and pop3d-ssl)."""

    host = HOST

    def __init__(self, certs: Certs, settings: str = "") -> None:
        self.certs = certs
        self.settings = settings
        self.root = make_workdir("courier-")
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "courier.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Courier:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        unpacked = debs.unpack("courier", PACKAGES)
        self._write_config(unpacked)
        mounts = debs.MOUNTS.format(unpacked=unpacked, config=self.root / "etc")
        script = mounts + DAEMONS
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [*debs.NAMESPACES, "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            wait_for_greeting(self.pop3_port, b"+OK", alive=self._alive)
            tls = self.certs.client_context()
            wait_for_greeting(self.pop3s_port, b"+OK", tls=tls, alive=self._alive)
        except Exception as error:
            self.stop()
            raise RuntimeError(f"Courier did not start:\n{self.log()}") from error

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # unshare --fork ignores SIGTERM, and nothing here keeps state worth a clean
        # stop: SIGKILL to unshare ends the namespace and with it every daemon.
        kill_group(process.pid)
        process.wait()

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self, unpacked: Path) -> None:
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
        debs.passwd_with(etc, "courier", COURIER_UID, "courier", COURIER_UID, "/var/lib/courier")


if __name__ == "__main__":  # a manual look: python -m tests.servers.courier
    from .certs import make_certs

    with Courier(make_certs(make_workdir("courier-certs-"), "courier")) as server:
        print(f"Courier POP3 on {HOST}:{server.pop3_port} (STLS), :{server.pop3s_port} (TLS)")
        signal.pause()
