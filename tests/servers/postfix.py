"""A throwaway Postfix instance on 127.0.0.1 that delivers into the test Dovecot's Maildirs.

It is a separate instance (``postfix -c DIR/etc``) with its own queue, data directory and
log file, so it neither needs nor touches the system's Postfix. Mail for
``USER@example.test`` lands in ``Dovecot.maildir(USER)``, where POP3 can fetch it; mail for
any other domain bounces at once (every outbound transport is ``error:``), so nothing ever
leaves the machine. SMTP AUTH is checked by Dovecot, against the same passwords as POP3.

What refuses a recipient (useful for "rejected recipient" tests):

* any ``X@example.test`` where X is not a Dovecot user, e.g. ``nobody@example.test``: RCPT
  gets Postfix's own ``550 5.1.1 ... User unknown in virtual mailbox table``. Users added
  later with ``Dovecot.add_user`` are added to the mailbox map at once;
* on ``submission_port`` and ``smtps_port``, any recipient before AUTH gets a 554 (those
  ports require authentication, like real submission servers); on ``smtp_port`` the
  client's 127.0.0.1 is in ``mynetworks``, so no AUTH is needed there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from string import Template

from .certs import Certs
from .dovecot import MAIL_GID, MAIL_UID, Dovecot
from .managed import ManagedServer
from .ports import HOST, free_port, wait_for_greeting
from .procs import (
    adopt_orphans,
    binary,
    is_running,
    kill_group,
    make_workdir,
    read_log,
    wait_for_text,
    wait_until_gone,
)

DOMAIN = "example.test"
HOSTNAME = "mail.example.test"
REFUSED_RECIPIENT = f"nobody@{DOMAIN}"

MAIN_CF = Template("""\
# Written by tests/servers/postfix.py for one test session. Do not edit.
compatibility_level = 3.6
queue_directory = $root/queue
data_directory = $root/data
# No syslog on test machines: log to a file through the postlog service (master.cf).
maillog_file = $root/maillog
maillog_file_prefixes = $root
inet_interfaces = $host
inet_protocols = ipv4
myhostname = $hostname
mydomain = $domain
myorigin = $$myhostname
mydestination =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
biff = no
smtputf8_enable = yes
smtpd_banner = $$myhostname ESMTP mailcli-test
message_size_limit = 62914560
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# Local mail: USER@$domain -> Dovecot's USER/Maildir/ (a trailing / means Maildir format).
virtual_mailbox_domains = $domain
virtual_mailbox_base = $mail_root
virtual_mailbox_maps = hash:$root/etc/vmailbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
virtual_minimum_uid = $uid

# Nothing leaves this machine: no DNS, and every transport that could relay just bounces.
default_transport = error:no outbound mail in tests
relay_transport = error:no outbound mail in tests
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtpd_peername_lookup = no

# Tests provoke errors on purpose; do not slow the client down for them.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 1000
in_flow_delay = 0

smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $auth_socket
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_loglevel = 1
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated,
    reject_unauth_destination
""")

# Listeners first, then Postfix's internal services. chroot is "n" everywhere: smtpd must
# reach Dovecot's auth socket, which lives outside the queue directory.
MASTER_CF = Template("""\
# Written by tests/servers/postfix.py. service type private unpriv chroot wakeup maxproc command
$host:$smtp_port inet n - n - - smtpd
$host:$submission_port inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
$host:$smtps_port inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
""")


class Postfix(ManagedServer):
    """A running (after ``start()``) Postfix delivering ``USER@example.test`` to ``dovecot``.

    Ports: ``smtp_port`` (plaintext, STARTTLS and AUTH offered, relays for 127.0.0.1),
    ``submission_port`` (STARTTLS required, then AUTH required), ``smtps_port`` (implicit
    TLS, AUTH required).
    """

    host = HOST
    domain = DOMAIN
    refused_recipient = REFUSED_RECIPIENT

    def __init__(
        self,
        dovecot: Dovecot,
        certs: Certs | None = None,
        root: Path | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        service_options: Mapping[str, Mapping[str, str]] | None = None,
    ):
        """``settings``: main.cf parameters that replace (or add to) the defaults above,
        e.g. ``{"smtpd_forbid_bare_newline": "no"}``; ``service_options``: ``-o`` overrides
        per listener (``"smtp"``, ``"submission"``, ``"smtps"``). Transports cannot be
        changed: every one stays ``error:`` so nothing leaves the machine."""
        self.settings = dict(settings or {})
        self.service_options = {name: dict(o) for name, o in (service_options or {}).items()}
        _refuse_transport_changes(self.settings, self.service_options)
        self.dovecot = dovecot
        self.certs = certs if certs is not None else dovecot.certs
        self._owns_root = root is None  # then the context manager deletes it on exit
        self.root = root if root is not None else make_workdir("postfix-")
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.smtps_port = free_port()
        self._master_pid: int | None = None

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maillog_path(self) -> Path:
        return self.root / "maillog"

    def maillog(self) -> str:
        """Postfix's log so far, e.g. to assert "lost connection after DATA" or a TLS line.

        postlogd writes asynchronously: poll (``wait_for_log``) for a line that must appear.
        """
        return read_log(self.maillog_path)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` appears in the maillog; return the whole log."""
        return wait_for_text(self.maillog, text, timeout, "Postfix's maillog")

    def discard(self) -> None:
        if self._owns_root:
            self.remove()

    def start(self) -> None:
        """Write the config, start the instance and wait until all three ports greet."""
        self._write_config()
        # The master daemonises; as subreaper we inherit it and its orphans and can reap them.
        adopt_orphans()
        self._postfix("start")
        pid_file = self.root / "queue" / "pid" / "master.pid"
        self._master_pid = int(pid_file.read_text().split()[0])
        self.dovecot.user_added.append(self._write_mailbox_map)  # removed again by stop()
        try:
            self._wait_ready()
        except Exception as error:
            self.stop()
            raise RuntimeError(f"Postfix did not start:\n{self.maillog()}") from error

    def stop(self) -> None:
        """Stop the instance and make sure all its processes are gone; idempotent."""
        pid, self._master_pid = self._master_pid, None
        if pid is None:
            return
        self.dovecot.user_added.remove(self._write_mailbox_map)
        if is_running(pid):
            self._postfix("stop", check=False)
        # The master runs in its own session (pgid == pid) with all its children.
        if not wait_until_gone(pid, timeout=10):
            kill_group(pid)

    def wait_for_delivery(self, user: str, count: int = 1, timeout: float = 10.0) -> list[Path]:
        """Wait until ``user``'s Maildir holds at least ``count`` messages; return them all.

        Looks in new/ and cur/ because a POP3 session may already have moved a message.
        """
        deadline = time.monotonic() + timeout
        while len(messages := self.messages(user)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(messages)} of {count} messages for {user}; maillog:\n{self.maillog()}"
                )
            time.sleep(0.05)
        return messages

    def messages(self, user: str) -> list[Path]:
        """Message files in ``user``'s Maildir (new/ and cur/), oldest delivery first."""
        maildir = self.dovecot.maildir(user)
        files = [
            p
            for sub in ("new", "cur")
            if (maildir / sub).is_dir()
            for p in (maildir / sub).iterdir()
        ]
        # Maildir names start with the delivery time in seconds, then a unique part.
        return sorted(files, key=lambda path: (path.stat().st_mtime, path.name))

    def _wait_ready(self) -> None:
        alive = self._alive
        wait_for_greeting(self.smtp_port, b"220", alive=alive)
        wait_for_greeting(self.submission_port, b"220", alive=alive)
        tls = self.certs.client_context()
        wait_for_greeting(self.smtps_port, b"220", tls=tls, alive=alive)

    def _alive(self) -> bool:
        return self._master_pid is not None and is_running(self._master_pid)

    def _postfix(self, command: str, *, check: bool = True) -> None:
        """Run ``postfix -c DIR/etc COMMAND``, raising with its output on failure."""
        result = subprocess.run(
            [binary("postfix"), "-c", str(self.config_dir), command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"postfix {command} failed:\n{result.stderr}\n{self.maillog()}")

    def _write_config(self) -> None:
        """Write main.cf, master.cf and the mailbox map, backdated by an hour.

        Postfix does not trust a config file changed within the last second (it may be half
        written) and pauses "to let it cool down"; over a start that costs about 1.8 s.
        """
        self.config_dir.mkdir(parents=True, exist_ok=True)
        # Postfix creates its queue subdirectories, but not the queue directory itself.
        (self.root / "queue").mkdir(exist_ok=True)
        an_hour_ago = time.time() - 3600
        main_cf = _with_settings(MAIN_CF.substitute(self._settings()), self.settings)
        master_cf = self._with_service_options(MASTER_CF.substitute(self._settings()))
        for name, text in (("main.cf", main_cf), ("master.cf", master_cf)):
            path = self.config_dir / name
            path.write_text(text)
            os.utime(path, (an_hour_ago, an_hour_ago))
        self._write_mailbox_map()

    def _with_service_options(self, master_cf: str) -> str:
        """master.cf with each listener's extra ``-o name=value`` lines after its own."""
        ports = {"smtp": self.smtp_port, "submission": self.submission_port}
        ports["smtps"] = self.smtps_port
        lines = master_cf.splitlines(keepends=True)
        for service, options in self.service_options.items():
            head = f"{HOST}:{ports[service]} inet"
            at = next(n for n, line in enumerate(lines) if line.startswith(head)) + 1
            lines[at:at] = [f"  -o {name}={value}\n" for name, value in options.items()]
        return "".join(lines)

    def _write_mailbox_map(self, _new_user: str | None = None) -> None:
        """(Re)build the map of Dovecot's users: ``USER@example.test -> USER/Maildir/``.

        virtual(8) refuses regexp substitutions in this map (a safety rule), hence one line
        per user. The new map is built aside and renamed over the live one: Postfix daemons
        notice a replaced map file before their next connection and restart, so a user added
        mid-session receives mail from the next SMTP connection on, without a reload.
        """
        lines = "".join(f"{user}@{DOMAIN}\t{user}/Maildir/\n" for user in self.dovecot.users)
        staging = self.config_dir / "vmailbox.new"
        staging.write_text(lines)
        subprocess.run(
            [binary("postmap"), "-c", str(self.config_dir), f"hash:{staging}"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        os.replace(f"{staging}.db", self.config_dir / "vmailbox.db")
        os.replace(staging, self.config_dir / "vmailbox")

    def _settings(self) -> dict[str, object]:
        return {
            "root": self.root,
            "host": HOST,
            "hostname": HOSTNAME,
            "domain": DOMAIN,
            "mail_root": self.dovecot.mail_root,
            "uid": MAIL_UID,
            "gid": MAIL_GID,
            "auth_socket": self.dovecot.auth_socket,
            "cert": self.certs.cert_pem,
            "key": self.certs.key_pem,
            "smtp_port": self.smtp_port,
            "submission_port": self.submission_port,
            "smtps_port": self.smtps_port,
        }

    def remove(self) -> None:
        """Delete the work directory (after ``stop()``)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _with_settings(main_cf: str, settings: Mapping[str, str]) -> str:
    """main.cf without the lines (and continuation lines) of the parameters in
    ``settings``, then those parameters appended; unchanged when there are none."""
    if not settings:
        return main_cf
    kept: list[str] = []
    dropping = False
    for line in main_cf.splitlines(keepends=True):
        if line[:1] in (" ", "\t") and line.strip():
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split("=")[0].strip() in settings
        if not dropping:
            kept.append(line)
    added = "".join(f"{name} = {value}\n" for name, value in settings.items())
    return "".join(kept) + "\n# Settings of this instance (Postfix(settings=...)).\n" + added


def _refuse_transport_changes(
    settings: Mapping[str, str], service_options: Mapping[str, Mapping[str, str]]
) -> None:
    names = [*settings, *(name for options in service_options.values() for name in options)]
    touched = [name for name in names if "transport" in name]
    if touched:
        raise ValueError(f"tests never change transports (all stay error:): {touched}")
