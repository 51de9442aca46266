"""The commands msmtp and mpop share (server, TLS, login), and the mapping machinery.

A mapping table gives, for each command of a format, either a handler (which maps it,
or returns why it could not) or the reason it is never mapped. Every setting of every
account goes through the table: what is not mapped is reported with file, line and why.
Settings that combine (tls with tls_starttls, proxy_host with proxy_port, user with
password and auth) are collected first and mapped by `Mapper.finish`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

from mailcli.endpoint import host_port
from mailcli.importer.plan import ClearPassword, ImportPlan, StoredLogin, Unmapped
from mailcli.importer.rcfile import RcAccount, Setting

Handler = Callable[["Mapper", Setting], str | None]
Table = Mapping[str, Handler | str]
Protocol = Literal["smtp", "pop3"]
# Collected in Mapper.flags and mapped together in Mapper.finish.
COMBINED = ("tls", "tls_starttls", "proxy_host", "proxy_port", "auth", "user", "password")
_HEX_DIGITS = frozenset("0123456789abcdef")


# The commands an account key (not a server's) is mapped from.
ACCOUNT_KEY_COMMANDS = {
    "password_command": ("passwordeval",),
    "ehlo": ("domain",),
    "domain": ("maildomain",),
    "log": ("syslog", "logfile"),
}


class Mapper:
    """One account of one file into a mailcli account table."""

    def __init__(self, account: RcAccount, protocol: Protocol, plan: ImportPlan) -> None:
        self.account = account
        self.protocol = protocol
        self.plan = plan
        self.table: dict[str, Any] = {}
        self.server: dict[str, Any] = {}
        self.fetch: dict[str, Any] = {}  # [accounts.NAME.fetch] (mpop)
        self.flags: dict[str, Setting] = {}

    def run(self, table: Table) -> dict[str, Any]:
        for setting in self.account.settings.values():
            handler = table.get(setting.command, "not a command of this format")
            why = handler if isinstance(handler, str) else handler(self, setting)
            if why:
                self.report(setting, why)
        self.finish()
        if self.server:
            self.table[self.protocol] = self.server
        return self.table

    def origins(self) -> dict[str, str]:
        """Where each account key of the table came from (FILE:LINE), for reports."""
        found = {}
        for key in self.table:
            commands = ACCOUNT_KEY_COMMANDS.get(key, (key,))
            settings = [self.account.settings.get(command) for command in commands]
            found[key] = next((s.where for s in settings if s is not None), "")
        return {key: where for key, where in found.items() if where}

    def report(self, setting: Setting, why: str) -> None:
        self.plan.unmapped.append(Unmapped(setting.where, self.account.name, setting.command, why))

    def finish(self) -> None:
        self._security()
        self._proxy()
        self._login()

    def _security(self) -> None:
        tls = on_off(self.flags.get("tls"), default=False)
        starttls = on_off(self.flags.get("tls_starttls"), default=True)
        if tls is None or starttls is None:
            bad = [s for s in (self.flags.get("tls"), self.flags.get("tls_starttls")) if s]
            for setting in bad:
                self.report(setting, "expects on or off")
            return
        self.server["security"] = "none" if not tls else "starttls" if starttls else "tls"

    def _proxy(self) -> None:
        host, port = self.flags.get("proxy_host"), self.flags.get("proxy_port")
        if host is None or not host.argument:
            if port is not None and port.argument:
                self.report(port, "a proxy port without proxy_host")
            return
        number = parse_port(port.argument) if port is not None and port.argument else 1080
        if number is None:
            self.report(port, "not a port number (1-65535)") if port else None
            return
        # The tools resolve every name through the proxy: socks5h does the same.
        self.server["proxy"] = f"socks5h://{host_port(host.argument, number)}"

    def _login(self) -> None:
        auth, user = self.flags.get("auth"), self.flags.get("user")
        method = "on" if auth is None or not auth.argument else auth.argument.lower()
        if method == "off":
            if user is not None:
                self.report(user, "auth off: mailcli logs in whenever a user is set; left out")
            return
        if auth is not None and method != "on":
            if method in spoken_methods(self.protocol):
                self.server["auth"] = method
            else:
                self.report(auth, f"mailcli does not log in with {method} over {self.protocol}")
        if user is not None and user.argument:
            self.server["user"] = user.argument
        self._password(user.argument if user is not None else "")

    def _password(self, user: str) -> None:
        host = self.server.get("host")
        password = self.flags.get("password")
        if not user or not host:
            if password is not None:
                self.report(password, "a password without a user and host to store it for")
            return
        key = f"{user}@{host}"
        if password is not None:
            self.plan.passwords.append(ClearPassword(key, password.argument, password.where))
        elif "password_command" not in self.table:
            self.plan.stored_logins.append(StoredLogin(key, host, self.protocol, user))


def spoken_methods(protocol: Protocol) -> set[str]:
    """The login methods mailcli speaks, in msmtp's and mpop's spelling (lower case)."""
    if protocol == "pop3":
        from mailcli.pop3.auth import AUTH_METHODS

        return set(AUTH_METHODS)
    from mailcli.auth.sasl import EXTERNAL, XOAUTH2
    from mailcli.smtp.auth import AUTH_PREFERENCE_TLS

    return {m.lower() for m in (*AUTH_PREFERENCE_TLS, XOAUTH2, EXTERNAL)}


def on_off(setting: Setting | None, *, default: bool) -> bool | None:
    """msmtp's booleans: on (or empty) and off; None for anything else."""
    if setting is None:
        return default
    return {"": True, "on": True, "off": False}.get(setting.argument.lower())


def parse_port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def expand_home(path: str) -> str:
    """A leading ~ is $HOME, as the tools read it."""
    if path == "~" or path.startswith("~/"):
        return os.environ.get("HOME", "~") + path[1:]
    return path


def combined(mapper: Mapper, setting: Setting) -> str | None:
    mapper.flags[setting.command] = setting
    return None


def server_key(key: str, convert: Callable[[str], Any] = str, why: str = "") -> Handler:
    """A handler putting the argument (converted; None from `convert` is invalid) into
    the server table under `key`."""
    return _key(lambda mapper: mapper.server, key, convert, why)


def account_key(key: str, convert: Callable[[str], Any] = str, why: str = "") -> Handler:
    """The same into the account table."""
    return _key(lambda mapper: mapper.table, key, convert, why)


def _key(
    table: Callable[[Mapper], dict[str, Any]], key: str, convert: Callable[[str], Any], why: str
) -> Handler:
    def handle(mapper: Mapper, setting: Setting) -> str | None:
        value = convert(setting.argument)
        if value is None or value == "":
            return why or "an empty or invalid value"
        table(mapper)[key] = value
        return None

    return handle


def trust_file(mapper: Mapper, setting: Setting) -> str | None:
    if setting.argument in ("", "system"):  # the system's store: mailcli's default too
        return None
    mapper.server["cafile"] = expand_home(setting.argument)
    return None


def sha256_pin(text: str) -> str | None:
    """A SHA-256 fingerprint (64 hex digits, colons optional, any case) as mailcli's
    `tls_fingerprint` writes it; None when `text` is not one."""
    digits = text.replace(":", "").lower()
    return "SHA256:" + digits if len(digits) == 64 and set(digits) <= _HEX_DIGITS else None


def fingerprint(mapper: Mapper, setting: Setting) -> str | None:
    pin = sha256_pin(setting.argument)
    if pin is None:
        return "not a SHA-256 fingerprint (mailcli pins SHA-256 only)"
    mapper.server["tls_fingerprint"] = pin
    return None


def certcheck(mapper: Mapper, setting: Setting) -> str | None:
    if on_off(setting, default=True):
        return None
    return "mailcli always verifies the certificate: pin it with tls_fingerprint instead"


SHARED: dict[str, Handler | str] = {
    "host": server_key("host"),
    "port": server_key("port", parse_port, "not a port number (1-65535)"),
    "source_ip": server_key("source_address"),
    "tls_trust_file": trust_file,
    "tls_fingerprint": fingerprint,
    "tls_cert_file": server_key("client_cert", expand_home),
    "tls_key_file": server_key("client_key", expand_home),
    "tls_certcheck": certcheck,
    "passwordeval": account_key("password_command", why="an empty command"),
    **dict.fromkeys(COMBINED, combined),
    "socket": "mailcli connects over TCP only (no local socket)",
    "timeout": "mailcli's timeout is the --timeout option of each run, not an account key",
    "ntlmdomain": "mailcli does not speak NTLM",
    "tls_crl_file": "mailcli does not read certificate revocation lists",
    "tls_priorities": "mailcli uses Python's TLS defaults; no cipher priority string",
    "tls_host_override": "mailcli verifies the certificate for the host it connects to",
    "tls_min_dh_prime_bits": "mailcli uses Python's TLS defaults for DH parameters",
    "eval": "not run by the import (it runs a command): put its output in the file instead",
    "defaults": "",  # handled by the grammar
    "account": "",
}
