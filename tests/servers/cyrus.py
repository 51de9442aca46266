"""A throwaway Cyrus POP3 server (cyrus-pop3d 3.6.1, Debian bookworm) on 127.0.0.1.

Cyrus conflicts with Dovecot as a package: it runs from its unpacked .debs in private
namespaces (see debs.py). The configuration is Debian's /etc/imapd.conf as shipped
(allowplaintext: yes, APOP on, SASL auxprop with no users) with only its directories,
the certificate and key (Debian ships none: without them there is no STLS) set, plus
``settings`` (imapd.conf lines replacing Debian's): the hardened variant's fixes. Its
cyrus.conf keeps Debian's pop3 service (``pop3d -U 30``, maxchild=50) and enables the
pop3s one Debian ships commented out; the other services (IMAP, NNTP, HTTP, sieve,
LMTP) are left out. ``pop3_port`` is 110-style (STLS), ``pop3s_port`` 995-style.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from string import Template

from . import debs
from .ports import HOST
from .procs import make_workdir

PACKAGES = ("cyrus-pop3d", "cyrus-common", "libical3", "libpcre3", "libclamav12", "libzephyr4")
CYRUS_UID = 5102  # Debian's postinst makes the user cyrus, in group mail
MAIL_GID = 8

CYRUS_CONF = Template("""\
START {
  recover cmd="ctl_cyrusdb -r"
}
SERVICES {
  pop3 cmd="pop3d -U 30" listen="$host:$pop3_port" prefork=0 maxchild=50
  pop3s cmd="pop3d -s -U 30" listen="$host:$pop3s_port" prefork=0 maxchild=50
}
EVENTS {
  checkpoint cmd="ctl_cyrusdb -c" period=30
}
""")
DAEMONS = """\
mkdir -p /run/cyrus/proc /run/cyrus/lock /run/cyrus/socket
chown -R cyrus:mail /run/cyrus
exec /usr/lib/cyrus/bin/master -C /etc/imapd.conf -M /etc/cyrus.conf -p {root}/master.pid
"""


def missing() -> str | None:
    """Why Cyrus cannot run here (None: it can)."""
    return debs.missing(PACKAGES)


class Cyrus(debs.UnpackedPop3Server):
    """Cyrus POP3 with Debian's imapd.conf plus ``settings`` ("option: value" lines)."""

    name = "Cyrus"
    packages = PACKAGES

    def daemons(self) -> str:
        return DAEMONS.format(root=self.root)

    def write_files(self, unpacked: Path) -> None:
        etc = self.root / "etc"
        etc.mkdir()
        for name in ("lib", "mail"):
            (self.root / name).mkdir()
            os.chown(self.root / name, CYRUS_UID, MAIL_GID)
        for source, name in ((self.certs.cert_pem, "cert.pem"), (self.certs.key_pem, "key.pem")):
            shutil.copyfile(source, self.root / name)
            os.chown(self.root / name, CYRUS_UID, MAIL_GID)
        options = {
            "configdirectory": str(self.root / "lib"),
            "partition-default": str(self.root / "mail"),
            "tls_server_cert": str(self.root / "cert.pem"),
            "tls_server_key": str(self.root / "key.pem"),
            **_options(self.settings),
        }
        shipped = (unpacked / "etc" / "imapd.conf").read_text()
        (etc / "imapd.conf").write_text(_with_options(shipped, options))
        (etc / "cyrus.conf").write_text(
            CYRUS_CONF.substitute(host=HOST, pop3_port=self.pop3_port, pop3s_port=self.pop3s_port)
        )
        debs.passwd_with(
            etc, [debs.SystemUser("cyrus", CYRUS_UID, str(self.root / "lib"), "mail", MAIL_GID)]
        )


def _options(lines: str) -> dict[str, str]:
    pairs = (line.partition(":") for line in lines.splitlines() if line.strip())
    return {key.strip(): value.strip() for key, _, value in pairs}


def _with_options(shipped: str, options: dict[str, str]) -> str:
    """Debian's imapd.conf with `options` in place of its own settings (Cyrus takes
    no option twice)."""
    kept = [
        line
        for line in shipped.splitlines()
        if line.startswith("#") or line.partition(":")[0].strip() not in options
    ]
    return "\n".join([*kept, *(f"{key}: {value}" for key, value in options.items())]) + "\n"


if __name__ == "__main__":  # a manual look: python -m tests.servers.cyrus
    from .certs import make_certs

    with Cyrus(make_certs(make_workdir("cyrus-certs-"), "cyrus")) as server:
        print(f"Cyrus POP3 on {HOST}:{server.pop3_port} (STLS), :{server.pop3s_port} (TLS)")
        signal.pause()
