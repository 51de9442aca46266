"""A throwaway Dovecot POP3 server on 127.0.0.1, configured from scratch in a temp dir.

It never reads /etc/dovecot: ``dovecot -F -c DIR/dovecot.conf`` with every path (sockets,
state, logs, mail) inside DIR, so several instances, and a system Dovecot, can coexist.
It also serves the SASL socket the test Postfix authenticates SMTP clients against, so the
same passwords work for POP3 and SMTP AUTH.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

from .certs import Certs
from .jwt import write_key
from .managed import ManagedServer
from .ports import HOST, free_port, wait_for_greeting
from .procs import (
    adopt_orphans,
    binary,
    kill_group,
    make_workdir,
    read_log,
    wait_for_text,
    wait_until_gone,
)

# Owner of all mail. Dovecot refuses to access mail as root, and Postfix's virtual(8)
# delivers as this uid too (virtual_uid_maps), so both sides agree on ownership.
MAIL_UID = 5000
MAIL_GID = 5000

# Unix domain socket (under base_dir) Postfix's smtpd uses for SASL; see auth_socket.
POSTFIX_AUTH_SOCKET = "auth-postfix"

# User names become directory names and Postfix map keys: keep them plain.
USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")

CONFIG = Template("""\
# Written by tests/servers/dovecot.py for one test session. Do not edit.
base_dir = $root/run
state_dir = $root/state
log_path = $root/dovecot.log
protocols = pop3
listen = $host
# As root, Dovecot runs its helpers as these system users (login processes refuse root).
default_internal_user = dovecot
default_login_user = dovenull

ssl = yes
ssl_cert = <$cert
ssl_key = <$key
# USER/PASS and AUTH PLAIN must work on the plaintext port too: mailcli's refusals of
# cleartext logins are what the tests check, not Dovecot's.
disable_plaintext_auth = no
# {PLAIN} passwords below are what make the challenge-response schemes (APOP, CRAM-MD5) work.
auth_mechanisms = plain login cram-md5 apop
# Tests try wrong passwords on purpose: no 2 s delay (but see the first passdb too).
auth_failure_delay = 0
auth_verbose = yes
pop3_uidl_format = %08Xu%08Xv
mail_location = maildir:~/Maildir
mail_fsync = never
first_valid_uid = $uid
last_valid_uid = $uid

# Failed logins answer at once, not on Dovecot's 0.5 s failure timer: this first passdb
# authenticates nobody but adds "nodelay", which a later failing passdb keeps.
passdb {
  driver = static
  args = noauthenticate nodelay=yes
}
passdb {
  driver = passwd-file
  # One file per user: Dovecot re-reads a changed passwd-file at most once a second, but
  # opens a user's own file afresh, so a user added a moment ago can log in at once.
  args = scheme=PLAIN $root/users/%u
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$root/mail/%u
}

service pop3-login {
  inet_listener pop3 {
    port = $pop3_port
  }
  inet_listener pop3s {
    port = $pop3s_port
    ssl = yes
  }
}
service auth {
  # For Postfix's smtpd (runs as user postfix); 0666 is fine inside a private temp dir.
  unix_listener $postfix_socket {
    mode = 0666
  }
}
""")


# The OAuth2 variant (``oauth2_key`` or ``oauth2_introspection_url``) edits the rendered
# CONFIG in these places, so the default configuration stays exactly as it was.
PASSWORD_MECHANISMS = "plain login cram-md5 apop"
BEARER_MECHANISMS = "xoauth2 oauthbearer"
OAUTH2_PASSDB = Template("""\
# OAuth2 bearer tokens (XOAUTH2, OAUTHBEARER); the password passdb above is limited to the
# password mechanisms, or Dovecot would also check each token as a password (and log a
# mismatch even for valid tokens).
passdb {
  driver = oauth2
  mechanisms = $mechanisms
  args = $args
}
""")
OAUTH2_LOCAL = Template("""\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$keys/
username_attribute = email
""")
OAUTH2_POST = Template("""\
introspection_mode = post
introspection_url = $url
username_attribute = email
active_attribute = active
active_value = true
""")


class Dovecot(ManagedServer):
    """A running (after ``start()``) POP3 server with users from a dict of passwords.

    ``pop3_port`` is plaintext with STLS offered, ``pop3s_port`` implicit TLS; both present
    ``certs``. User ``U``'s mail is the Maildir ``maildir(U)``; ``drop_message`` puts a message
    there the way a delivery agent would.

    With ``oauth2_key`` (HS256, see ``jwt``) users also log in with XOAUTH2 and OAUTHBEARER
    bearer tokens validated locally (``jwt.mint(key, USER, ...)``); with
    ``oauth2_introspection_url`` the tokens are checked by POSTing them to that URL (RFC 7662).
    """

    host = HOST

    def __init__(
        self,
        certs: Certs,
        users: dict[str, str],
        root: Path | None = None,
        *,
        oauth2_key: bytes | None = None,
        oauth2_introspection_url: str | None = None,
        extra_settings: str = "",
        failure_delay: bool = False,
    ) -> None:
        self.certs = certs
        # Appended to the config (a later setting wins), e.g. a hardened server for the
        # audit's tests; failure_delay=True drops the "nodelay" passdb as well.
        self.extra_settings = extra_settings
        self.failure_delay = failure_delay
        self.oauth2_key = oauth2_key
        self.oauth2_introspection_url = oauth2_introspection_url
        self._owns_root = root is None  # then the context manager deletes it on exit
        self.root = root if root is not None else make_workdir("dovecot-")
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        for user in users:
            _check_user_name(user)
        self._users = dict(users)
        self._process: subprocess.Popen[bytes] | None = None
        self._drops = 0
        # Called with the user name after add_user(); Postfix uses it to extend its mailbox map.
        self.user_added: list[Callable[[str], None]] = []

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def auth_socket(self) -> Path:
        """SASL socket for Postfix (``smtpd_sasl_type = dovecot``)."""
        return self.root / "run" / POSTFIX_AUTH_SOCKET

    @property
    def mail_root(self) -> Path:
        """Parent of every user's home; Postfix's ``virtual_mailbox_base``."""
        return self.root / "mail"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def log(self) -> str:
        """Dovecot's log so far (logins, auth failures, errors), for assertions and debugging.

        Its log process writes a moment after the session: poll (``wait_for_log``) for a
        line that must appear."""
        return read_log(self.log_path)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` appears in the log; return the whole log."""
        return wait_for_text(self.log, text, timeout, "Dovecot's log")

    def discard(self) -> None:
        if self._owns_root:
            self.remove()

    def start(self) -> None:
        """Write the config, launch Dovecot and wait until both ports greet with ``+OK``."""
        self._prepare_tree()
        adopt_orphans()  # helpers that outlive the master come to us to be reaped, see procs
        with (self.root / "dovecot.stderr").open("wb") as stderr:
            self._process = subprocess.Popen(
                [binary("dovecot"), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # its own process group, for a complete stop()
            )
        try:
            self._disable_auth_penalty()
            wait_for_greeting(self.pop3_port, b"+OK", alive=self._alive)
            tls = self.certs.client_context()
            wait_for_greeting(self.pop3s_port, b"+OK", tls=tls, alive=self._alive)
        except Exception as error:
            self.stop()
            raise RuntimeError(f"Dovecot did not start:\n{self._diagnostics()}") from error

    def stop(self) -> None:
        """Stop Dovecot and every process it forked; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Login and auth processes exit on their own once the master is gone; make sure.
        if not wait_until_gone(process.pid, timeout=5):
            kill_group(process.pid)

    def add_user(self, user: str, password: str) -> None:
        """Add a login with an empty Maildir; takes effect at once, without a reload.

        Changing an existing user's password is not offered: Dovecot might keep using the
        old one for up to a second (it re-reads a passwd-file at most once a second).
        """
        _check_user_name(user)
        if user in self._users:
            raise ValueError(f"user {user!r} already exists")
        self._users[user] = password
        self._write_passwd(user)
        self._make_maildir(user)
        for callback in self.user_added:
            callback(user)

    @property
    def users(self) -> dict[str, str]:
        """A copy of user -> password."""
        return dict(self._users)

    def maildir(self, user: str) -> Path:
        """User's Maildir (with ``new/``, ``cur/``, ``tmp/``)."""
        return self.mail_root / user / "Maildir"

    def drop_message(self, user: str, data: bytes) -> Path:
        """Deliver ``data`` into the user's Maildir as an MTA would: write in tmp/, rename to new/.

        ``data`` should use LF or CRLF consistently; Dovecot serves it as stored (converting
        LF to CRLF on the wire).
        """
        maildir = self._make_maildir(user)
        self._drops += 1
        # Maildir unique name: time, pid and a counter make it unique within this process.
        name = f"{int(time.time())}.M{time.time_ns() // 1000 % 1_000_000}P{os.getpid()}"
        name += f"Q{self._drops}.{socket.gethostname()}"
        temporary = maildir / "tmp" / name
        temporary.write_bytes(data)
        os.chown(temporary, MAIL_UID, MAIL_GID)
        final = maildir / "new" / name
        temporary.rename(final)
        return final

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _prepare_tree(self) -> None:
        """Create the config, passwd-file and mail tree; mail belongs to MAIL_UID."""
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.mail_root.mkdir(exist_ok=True)
        # Postfix's virtual(8) creates USER/Maildir/ here as MAIL_UID, so it must own it.
        os.chown(self.mail_root, MAIL_UID, MAIL_GID)
        self.config_path.write_text(self._render_config())
        for user in self._users:
            self._write_passwd(user)
            self._make_maildir(user)

    def _render_config(self) -> str:
        config = _with_extra_settings(
            self._render_base_config(), self.extra_settings, self.failure_delay
        )
        if self.oauth2_key is None and self.oauth2_introspection_url is None:
            return config
        return _with_oauth2(config, self._write_oauth2_args())

    def _write_oauth2_args(self) -> Path:
        """The oauth2 passdb's args file (and the key it validates tokens with)."""
        if self.oauth2_introspection_url is not None:
            text = OAUTH2_POST.substitute(url=self.oauth2_introspection_url)
        else:
            assert self.oauth2_key is not None
            keys = self.root / "keys"
            write_key(keys, self.oauth2_key)
            for path in (keys, *keys.rglob("*")):  # the auth process runs as dovecot
                path.chmod(0o755 if path.is_dir() else 0o644)
            text = OAUTH2_LOCAL.substitute(keys=keys)
        args = self.root / "oauth2.conf.ext"
        args.write_text(text)
        args.chmod(0o644)
        return args

    def _render_base_config(self) -> str:
        return CONFIG.substitute(
            root=self.root,
            host=HOST,
            cert=self.certs.cert_pem,
            key=self.certs.key_pem,
            uid=MAIL_UID,
            gid=MAIL_GID,
            pop3_port=self.pop3_port,
            pop3s_port=self.pop3s_port,
            postfix_socket=POSTFIX_AUTH_SOCKET,
        )

    def _write_passwd(self, user: str) -> None:
        """Write ``users/USER`` (passwd-file format, ``user:{PLAIN}password``) atomically."""
        directory = self.root / "users"
        directory.mkdir(exist_ok=True)
        temporary = directory / f".{user}.new"
        temporary.write_text(f"{user}:{{PLAIN}}{self._users[user]}\n")
        # The auth process runs as the unprivileged internal user and must read it.
        temporary.chmod(0o644)
        temporary.replace(directory / user)

    def _make_maildir(self, user: str) -> Path:
        """Create the user's home and Maildir owned by MAIL_UID, as a first delivery would."""
        _check_user_name(user)
        home = self.mail_root / user
        maildir = self.maildir(user)
        for path in (home, maildir, maildir / "tmp", maildir / "new", maildir / "cur"):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, MAIL_UID, MAIL_GID)
        return maildir

    def _disable_auth_penalty(self) -> None:
        """Remove the anvil penalty socket so failed logins do not slow down later ones.

        After a failed login Dovecot delays further logins from the same IP (all tests come
        from 127.0.0.1) by up to 15 s. The auth process only looks the socket up when it
        first needs it, so deleting it once the master has created it turns the penalty off.
        """
        penalty = self.root / "run" / "anvil-auth-penalty"
        deadline = time.monotonic() + 10
        while not penalty.exists():
            if not self._alive() or time.monotonic() > deadline:
                raise RuntimeError("Dovecot created no anvil-auth-penalty socket")
            time.sleep(0.02)
        penalty.unlink()

    def _diagnostics(self) -> str:
        return read_log(self.root / "dovecot.stderr") + self.log()

    def remove(self) -> None:
        """Delete the work directory (after ``stop()``)."""
        shutil.rmtree(self.root, ignore_errors=True)


def _with_oauth2(config: str, args: Path) -> str:
    """The default config plus the bearer mechanisms and the oauth2 passdb."""
    edits = [
        (
            f"auth_mechanisms = {PASSWORD_MECHANISMS}\n",
            f"auth_mechanisms = {PASSWORD_MECHANISMS} {BEARER_MECHANISMS}\n",
        ),
        (
            "  driver = passwd-file\n",
            f"  driver = passwd-file\n  mechanisms = {PASSWORD_MECHANISMS}\n",
        ),
        (
            "userdb {\n",
            OAUTH2_PASSDB.substitute(mechanisms=BEARER_MECHANISMS, args=args) + "userdb {\n",
        ),
    ]
    for old, new in edits:
        assert config.count(old) == 1, old
        config = config.replace(old, new)
    return config


NODELAY_PASSDB = """\
passdb {
  driver = static
  args = noauthenticate nodelay=yes
}
"""


def _with_extra_settings(config: str, settings: str, failure_delay: bool) -> str:
    """The default config unchanged when there is nothing extra."""
    if failure_delay:
        assert NODELAY_PASSDB in config
        config = config.replace(NODELAY_PASSDB, "", 1)
    return config + settings


def _check_user_name(user: str) -> None:
    if not USER_NAME.fullmatch(user):
        raise ValueError(f"user name {user!r} does not match {USER_NAME.pattern}")
