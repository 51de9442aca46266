"""A throwaway Exim 4.96 (Debian bookworm's exim4-daemon-light) on 127.0.0.1, as Debian
builds it (GnuTLS) or built with OpenSSL.

Exim conflicts with Postfix as a package, so it is never installed: scripts/setup keeps
its .debs in .cache/debs and tests/servers/debs.py unpacks them once into .cache/exim.
The daemon runs from there in private mount and PID namespaces, where overlays put the
unpacked /usr over the real one (so Exim finds itself at its compiled-in
/usr/sbin/exim4) and this server's files over /etc: /etc/exim4/exim4.conf (the first
file of Exim's compiled-in configuration list, so no -C and no trusted-config question)
and a passwd/group with Debian's ``Debian-exim`` system user and the local user
``audit``. /var/mail is this server's ``mail`` directory.

The configuration is Debian's exim4.conf.template as shipped, for an "internet site"
(dc_eximconfig_configtype='internet') with TLS enabled (MAIN_TLS_ENABLE, this session's
certificate): the macros update-exim4.conf would write, then ``settings`` (main-section
options, e.g. the hardened variant's fixes), then the template. Exim's own defaults
stay: smtp_accept_max 20, smtp_max_synprot_errors 3, PIPECONNECT advertised to all.
Local mail for ``audit@exim.test`` goes to ``mail/audit`` (mbox, Debian's mail_spool);
any other domain is refused ("relay not permitted"), so nothing leaves the machine.

The OpenSSL build (``build="openssl"``) is the same package's source, Debian's patches
and Local/Makefile, switched to OpenSSL as debian/rules allows; scripts/build-exim-openssl
builds its daemon into .cache/exim-openssl/exim4, which a bind mount puts over the
unpacked /usr/sbin/exim4, so everything else (configuration, users, paths) is the
Debian server's. Each build has its own form of the TLS fixes: ``HARDENED`` (a GnuTLS
priority string) and ``HARDENED_OPENSSL`` (openssl_options and an OpenSSL cipher list).
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from . import debs
from .certs import Certs
from .ports import HOST, free_port, wait_for_greeting
from .procs import make_workdir, read_log
from .sclient import starttls_handshakes

PACKAGES = ("exim4-base", "exim4-config", "exim4-daemon-light")
DOMAIN = "exim.test"
AUDIT_USER = "audit"
EXIM_UID = 5201  # Debian-exim, which the daemon switches to
AUDIT_UID = 5202
# What Debian's hardened Exim needs to pass the audit: its GnuTLS priority string (an
# openssl_options line makes the GnuTLS build refuse its configuration), and no early
# pipelining (PIPECONNECT answers pipelined commands whatever smtp_enforce_sync says).
HARDENED = {
    "tls_require_ciphers": "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-RSA:-SHA1",
    "pipelining_connect_advertise_hosts": ":",
}

# The same fixes for the OpenSSL build: TLS 1.0 and 1.1 off by openssl_options (which
# the GnuTLS build refuses), and an OpenSSL cipher list with only ECDHE and AEAD suites.
HARDENED_OPENSSL = {
    "openssl_options": "+no_tlsv1 +no_tlsv1_1",
    "tls_require_ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
    "pipelining_connect_advertise_hosts": ":",
}
BUILDS = ("gnutls", "openssl")
OPENSSL_BINARY = debs.REPOSITORY / ".cache" / "exim-openssl" / "exim4"

DAEMON = """\
mount --bind {root}/mail /var/mail
{binary}exec /usr/sbin/exim4 -bdf -oX {port} -q30m
"""


def missing(build: str = "gnutls") -> str | None:
    """Why this build cannot run here (None: it can)."""
    if build == "openssl" and not OPENSSL_BINARY.exists():
        return f"{OPENSSL_BINARY} is missing (scripts/build-exim-openssl builds it)"
    return debs.missing(PACKAGES)


class Exim(debs.UnpackedServer):
    """Exim with Debian's defaults plus ``settings`` (main-section options)."""

    name = "Exim"
    packages = PACKAGES
    host = HOST
    domain = DOMAIN
    audit_address = f"{AUDIT_USER}@{DOMAIN}"

    def __init__(
        self, certs: Certs, settings: Mapping[str, str] | None = None, build: str = "gnutls"
    ) -> None:
        if build not in BUILDS:
            raise ValueError(f"no Exim build {build!r}: {BUILDS}")
        super().__init__()
        self.certs = certs
        self.settings = dict(settings or {})
        self.build = build
        self.smtp_port = free_port()

    def mainlog(self) -> str:
        return read_log(self.root / "log" / "mainlog")

    def diagnostics(self) -> str:
        return f"{self.log()}\n{self.mainlog()}"

    def daemons(self) -> str:
        # The OpenSSL daemon takes the packaged one's place: Exim re-executes itself by
        # its compiled-in path, and the configuration names no binary.
        binary = f"mount --bind {OPENSSL_BINARY} /usr/sbin/exim4\n"
        if self.build != "openssl":
            binary = ""
        return DAEMON.format(root=self.root, port=self.smtp_port, binary=binary)

    def handshakes(self, version: str, ciphers: str) -> bool:
        """Whether `openssl s_client` completes a STARTTLS handshake with this protocol
        version option (e.g. -tls1) and cipher list: the audit's TLS findings, checked
        without mailcli."""
        return starttls_handshakes(self.smtp_port, version, ciphers)

    def wait_ready(self, alive: Callable[[], bool]) -> None:
        wait_for_greeting(self.smtp_port, b"220 ", alive=alive)

    def write_files(self, unpacked: Path) -> None:
        etc = self.root / "etc"
        (etc / "exim4").mkdir(parents=True)
        for name, owner in (("spool", EXIM_UID), ("log", EXIM_UID), ("mail", 0)):
            (self.root / name).mkdir()
            shutil.chown(self.root / name, owner, owner)
        (self.root / "mail").chmod(0o1777)  # deliveries run as the local user
        for name, source in (("exim.crt", self.certs.cert_pem), ("exim.key", self.certs.key_pem)):
            shutil.copy(source, etc / "exim4" / name)
            shutil.chown(etc / "exim4" / name, EXIM_UID, EXIM_UID)
        template = (unpacked / "etc" / "exim4" / "exim4.conf.template").read_text()
        (etc / "exim4" / "exim4.conf").write_text(self._macros() + template)
        debs.passwd_with(
            etc,
            [
                debs.SystemUser("Debian-exim", EXIM_UID, "/var/spool/exim4"),
                debs.SystemUser(AUDIT_USER, AUDIT_UID, "/var/mail"),
            ],
        )

    def _macros(self) -> str:
        """What update-exim4.conf writes for an internet site, then ``settings``."""
        macros = {
            "MAIN_LOCAL_INTERFACES": HOST,
            "MAIN_HARDCODE_PRIMARY_HOSTNAME": f"mail.{DOMAIN}",
            "MAIN_LOCAL_DOMAINS": f"@:localhost:{DOMAIN}",
            "MAIN_RELAY_TO_DOMAINS": "",
            "ETC_MAILNAME": DOMAIN,
            "LOCAL_DELIVERY": "mail_spool",
            "MAIN_RELAY_NETS": "",
            "DCreadhost": "",
            "DCsmarthost": "",
            "DC_eximconfig_configtype": "internet",
            "DCconfig_internet": "1",
            "MAIN_TLS_ENABLE": "yes",
            "SPOOLDIR": str(self.root / "spool"),
        }
        lines = [f"{name}={value}" for name, value in macros.items()]
        lines.append(f"log_file_path = {self.root / 'log'}/%slog")
        lines += [f"{name} = {value}" for name, value in self.settings.items()]
        return "# Written by tests/servers/exim.py.\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":  # a manual look: python -m tests.servers.exim
    from .certs import make_certs

    with Exim(make_certs(make_workdir("exim-certs-"), "exim")) as server:
        print(f"Exim on {HOST}:{server.smtp_port} (STARTTLS); mail for {server.audit_address}")
        signal.pause()
