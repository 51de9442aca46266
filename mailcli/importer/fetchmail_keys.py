"""fetchmail's keywords, each mapped onto mailcli's account keys or reported with why.

An account is built from the `defaults` entry, then the server's options, then the
user's (later ones win, as in fetchmail). Only POP3 servers map (`proto pop3`, `apop`,
or `auto`, which fetchmail tries as IMAP first: reported); a user with several local
names is multidrop: reported, and no account. Where fetchmail forwards to an SMTP
listener (its default: localhost port 25), mailcli has no such destination: reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailcli.endpoint import host_port
from mailcli.importer.common import parse_port, sha256_pin
from mailcli.importer.fetchmail import (
    RunControl,
    ServerEntry,
    Token,
    UserEntry,
    idfile_default,
    parse_run_control,
)
from mailcli.importer.plan import ClearPassword, ImportPlan, StateSource, Unmapped
from mailcli.importer.rcfile import read_text


class Account:
    def __init__(self, name: str, path: Path, plan: ImportPlan) -> None:
        self.name, self.path, self.plan = name, path, plan
        self.table: dict[str, Any] = {}
        self.pop3: dict[str, Any] = {"security": "starttls"}  # fetchmail 6.4 uses STLS
        self.fetch: dict[str, Any] = {"delete": True}  # fetchmail's default: nokeep
        self.flags: dict[str, list[Token]] = {}

    def report(self, option: list[Token], why: str) -> None:
        words = _shown(option[0])
        if option[0].text.lower() in KEYWORDS and len(option) > 1 and not option[1].quoted:
            words += " " + option[1].text  # a keyword's argument, or set's or no's keyword
        where = f"{self.path}:{option[0].line}"
        self.plan.unmapped.append(Unmapped(where, self.name, words, why))


Handler = Callable[[Account, list[Token], bool], str | None]  # (account, args, negated)


def _shown(token: Token) -> str:
    """A word as a report may show it: a word that is no keyword may be a password that
    lost its keyword to a typo (`passwd s3cret`), so only words that look like keywords
    show."""
    return token.text if re.fullmatch(r"[a-z][a-z.-]{0,30}", token.text.lower()) else "(a word)"


def arg(args: list[Token]) -> str:
    return args[0].text if args else ""


def pop3_value(key: str, convert: Callable[[str], Any] = str) -> Handler:
    def handle(account: Account, args: list[Token], negated: bool) -> str | None:
        value = convert(arg(args)) if args else None
        if value is None or value == "":
            return "an empty or invalid value"
        account.pop3[key] = value
        return None

    return handle


def protocol(account: Account, args: list[Token], negated: bool) -> str | None:
    name = arg(args).lower()
    if name == "apop":
        account.pop3["auth"] = "apop"
    elif name != "pop3":
        account.flags["not_pop3"] = args
        return f"{name or 'no protocol'}: only POP3 maps; no account imported"
    return None


def authenticate(account: Account, args: list[Token], negated: bool) -> str | None:
    method = arg(args).lower()
    if method in ("any", "password", ""):
        return None
    if method in ("external", "apop"):
        account.pop3["auth"] = method
        return None
    return f"mailcli does not log in with {method} over POP3"


def password(account: Account, args: list[Token], negated: bool) -> str | None:
    account.flags["password"] = args
    return None


def flag(name: str) -> Handler:
    def handle(account: Account, args: list[Token], negated: bool) -> str | None:
        account.flags[name] = args if not negated else []
        return None

    return handle


def keep(account: Account, args: list[Token], negated: bool) -> str | None:
    account.fetch["delete"] = negated
    return None


def nokeep(account: Account, args: list[Token], negated: bool) -> str | None:
    account.fetch["delete"] = not negated
    return None


def ssl(account: Account, args: list[Token], negated: bool) -> str | None:
    account.pop3["security"] = "starttls" if negated else "tls"
    return None


def certck(account: Account, args: list[Token], negated: bool) -> str | None:
    return "mailcli always verifies the certificate (sslcertfile names the CA)" if negated else None


def fingerprint(account: Account, args: list[Token], negated: bool) -> str | None:
    pin = sha256_pin(arg(args))
    if pin is None:
        return "not a SHA-256 fingerprint (mailcli pins SHA-256 only)"
    account.pop3["tls_fingerprint"] = pin
    return None


def sslproto(account: Account, args: list[Token], negated: bool) -> str | None:
    value = arg(args).lower()
    if value == "":
        account.pop3["security"] = "none"
        return None
    if value in ("auto", "tls1.2+", "tls1.3+", "tls1.3"):
        return None
    return f"{value}: mailcli speaks TLS 1.2 or later, as its TLS defaults allow"


def mda(account: Account, args: list[Token], negated: bool) -> str | None:
    if not arg(args):
        return "an empty command"
    if "%T" in arg(args) or "%t" in arg(args):
        return "holds %T (the local recipient), which mailcli does not substitute"
    account.fetch["to"] = "mda:" + arg(args).replace("%f", "%F")
    return None


def fetchall(account: Account, args: list[Token], negated: bool) -> str | None:
    return None if negated else "mailcli fetches only new mail (`mailcli fetch --all` for all)"


def unless_zero(why: str) -> Handler:
    def handle(account: Account, args: list[Token], negated: bool) -> str | None:
        return None if arg(args) in ("", "0") or negated else why

    return handle


def same(account: Account, args: list[Token], negated: bool) -> str | None:
    return None


def log_file(account: Account, args: list[Token], negated: bool) -> str | None:
    if arg(args):
        account.table.setdefault("log", os.path.expanduser(arg(args)))
    return None


def syslog(account: Account, args: list[Token], negated: bool) -> str | None:
    if not negated:
        account.table["log"] = "syslog"
    return None


_NOT_MAPPED = {
    "timeout": (1, "mailcli's timeout is the --timeout option of each run"),
    "interval": (1, "mailcli fetch polls each account at every run"),
    "via": (1, "mailcli connects to the server itself"),
    "envelope": (-1, "multidrop: mailcli fetches one user's mailbox"),
    "qvirtual": (1, "multidrop: mailcli fetches one user's mailbox"),
    "aka": (-1, "multidrop: mailcli fetches one user's mailbox"),
    "localdomains": (-1, "multidrop: mailcli fetches one user's mailbox"),
    "interface": (1, "mailcli has no interface check"),
    "monitor": (1, "mailcli has no interface check"),
    "plugin": (1, "mailcli has no plugin command (proxy = socks5://... is a proxy)"),
    "plugout": (1, "mailcli has no plugout command"),
    "dns": (0, "multidrop: mailcli fetches one user's mailbox"),
    "checkalias": (0, "multidrop: mailcli fetches one user's mailbox"),
    "principal": (1, "mailcli does not log in with Kerberos"),
    "esmtpname": (1, "mailcli does not forward over SMTP"),
    "esmtppassword": (1, "mailcli does not forward over SMTP"),
    "tracepolls": (0, "mailcli's --received-header adds its own Received line"),
    "bad-header": (1, "mailcli stores every message as the server gives it"),
    "sslcertpath": (1, "mailcli takes a CA file: sslcertfile"),
    "folder": (-1, "IMAP folders: mailcli fetches one POP3 mailbox"),
    "fetchdomains": (-1, "multidrop: mailcli fetches one user's mailbox"),
    "smtpaddress": (1, "mailcli does not forward over SMTP"),
    "antispam": (-1, "mailcli does not forward over SMTP"),
    "bsmtp": (1, "mailcli does not write BSMTP"),
    "preconnect": (1, "mailcli runs no command before connecting"),
    "postconnect": (1, "mailcli runs no command after the run"),
    "flush": (0, "mailcli fetch --delete deletes what was fetched before too"),
    "limitflush": (0, "mailcli has no size limit that skips mail"),
    "rewrite": (0, "mailcli stores every message as the server gives it"),
    "stripcr": (0, "mailcli stores every message with LF line ends"),
    "forcecr": (0, "mailcli stores every message with LF line ends"),
    "pass8bits": (0, "mailcli stores every message as the server gives it"),
    "dropstatus": (0, "mailcli stores every message as the server gives it"),
    "dropdelivered": (0, "mailcli stores every message as the server gives it"),
    "mimedecode": (0, "mailcli stores every message as the server gives it"),
    "idle": (0, "IMAP IDLE: no IMAP in mailcli"),
    "warnings": (1, "mailcli has no size warnings"),
    "batchlimit": (1, "mailcli does not forward over SMTP"),
    "fetchlimit": (1, "mailcli fetches every new message in one run"),
    "fetchsizelimit": (1, "mailcli asks for every size in one LIST"),
    "fastuidl": (1, "mailcli always lists every UID"),
    "expunge": (1, "mailcli deletes at the end of the run, in one session"),
    "properties": (1, "mailcli runs no extension scripts"),
    "showdots": (0, "mailcli shows progress on a terminal"),
    "daemon": (1, "run mailcli fetch from cron or a systemd timer instead"),
    "postmaster": (1, "mailcli does not forward over SMTP"),
    "bouncemail": (0, "mailcli does not forward over SMTP"),
    "spambounce": (0, "mailcli does not forward over SMTP"),
    "softbounce": (0, "mailcli does not forward over SMTP"),
    "invisible": (0, "mailcli adds a Received line only with received_header"),
    "no-syslog": (0, ""),
}
HANDLERS: dict[str, tuple[int, Handler]] = {
    "proto": (1, protocol),
    "protocol": (1, protocol),
    "port": (1, pop3_value("port", parse_port)),
    "service": (1, pop3_value("port", parse_port)),
    "auth": (1, authenticate),
    "authenticate": (1, authenticate),
    "uidl": (0, same),
    "pass": (1, password),
    "password": (1, password),
    "there": (0, same),
    "here": (0, same),
    "is": (-1, flag("local")),
    "to": (-1, flag("local")),
    "ssl": (0, ssl),
    "sslcertck": (0, certck),
    "sslcertfile": (1, pop3_value("cafile", os.path.expanduser)),
    "sslfingerprint": (1, fingerprint),
    "sslproto": (1, sslproto),
    "sslkey": (1, pop3_value("client_key", os.path.expanduser)),
    "sslcert": (1, pop3_value("client_cert", os.path.expanduser)),
    "keep": (0, keep),
    "nokeep": (0, nokeep),
    "fetchall": (0, fetchall),
    "limit": (1, unless_zero("mailcli has no size above which mail stays unread")),
    "mda": (1, mda),
    "smtphost": (-1, flag("smtphost")),
    "smtpname": (1, flag("smtpname")),
    "lmtp": (0, flag("lmtp")),
    "logfile": (1, log_file),
    "syslog": (0, syslog),
    "idfile": (1, flag("idfile")),
}
KEYWORDS = {name: arity for name, (arity, _) in {**HANDLERS, **_NOT_MAPPED}.items()}
KEYWORDS |= {"set": 1, "defaults": 0, "no": 1}


def map_fetchmail(path: Path, plan: ImportPlan) -> None:
    """Every user of every POP3 server entry of a fetchmailrc into `plan`."""
    parsed = parse_run_control(read_text(path), path, KEYWORDS)
    shared = Account("-", path, plan)  # `set` globals: reported once, applied to each
    for option in parsed.globals:
        _apply(shared, option)
    idfile = _idfile(shared)
    for server in parsed.servers:
        if not server.users:
            why = "a server entry without a user: nothing to import"
            plan.unmapped.append(Unmapped(f"{path}:{server.host.line}", "-", server.verb, why))
        for user in server.users:
            _map_user(parsed, server, user, shared, idfile)


def _idfile(shared: Account) -> Path:
    """fetchmail's idfile: `set idfile`, else its default."""
    idfile = shared.flags.get("idfile")
    if idfile:
        return Path(os.path.expanduser(idfile[0].text))
    home = Path(os.environ.get("HOME") or Path.home())
    return idfile_default(home, os.environ.get("FETCHMAILHOME"))


def _map_user(
    parsed: RunControl, server: ServerEntry, user: UserEntry, shared: Account, idfile: Path
) -> None:
    several = len(server.users) > 1
    name = f"{server.host.text}-{user.name.text}" if several else server.host.text
    account = Account(name, parsed.path, shared.plan)
    account.table.update(shared.table)
    account.pop3 |= {"host": server.host.text, "user": user.name.text}
    for option in [*parsed.defaults, *server.options, *user.options]:
        _apply(account, option)
    if "not_pop3" in account.flags or not _single_drop(account, user):
        return
    _delivery(account, server)
    if account.flags.get("password"):
        secret = account.flags["password"][0]
        key = f"{user.name.text}@{server.host.text}"
        account.plan.passwords.append(
            ClearPassword(key, secret.text, f"{parsed.path}:{secret.line}")
        )
    account.table |= {"pop3": account.pop3, "fetch": account.fetch}
    account.plan.merge(name, account.table, f"{parsed.path}:{server.host.line}")
    where = f"{parsed.path}:{user.name.line}"
    source = StateSource(name, user.name.text, server.host.text, idfile, where, "fetchmail")
    account.plan.states.append(source)


def _single_drop(account: Account, user: UserEntry) -> bool:
    local = account.flags.get("local", [])
    if len(local) > 1 or any(t.text == "*" for t in local):
        why = "multidrop (several local names): mailcli fetches one user's mailbox; no account"
        account.report([user.name], why)
        return False
    return True


def _delivery(account: Account, server: ServerEntry) -> None:
    hosts = account.flags.get("smtphost", [])
    if "lmtp" in account.flags and account.flags["lmtp"] is not None and hosts:
        host, _, port_text = hosts[0].text.partition("/")
        port = parse_port(port_text or "24")
        if host.startswith("/"):
            account.fetch.setdefault("to", f"lmtp:{host}")
        elif port is None:
            account.report(hosts, f"{port_text!r} is not a port number: no lmtp: target")
        else:
            account.fetch.setdefault("to", f"lmtp:{host_port(host, port)}")
        if account.flags.get("smtpname"):
            account.fetch["lmtp_rcpt"] = account.flags["smtpname"][0].text
    elif "to" not in account.fetch:
        why = (
            "fetchmail forwards to an SMTP listener (smtphost, default localhost); mailcli "
            "stores into fetch.to (default ~/Maildir): give maildir:, mbox:, mda: or lmtp:"
        )
        account.report([server.host], why)


def _apply(account: Account, option: list[Token]) -> None:
    tokens, negated = option, False
    if tokens and tokens[0].text.lower() == "set" and not tokens[0].quoted:
        tokens = tokens[1:]
    if tokens and tokens[0].text.lower() == "no" and not tokens[0].quoted:
        tokens, negated = tokens[1:], True
    if not tokens:
        account.report(option, "an option without its keyword")
        return
    keyword = "" if tokens[0].quoted else tokens[0].text.lower()
    if keyword in HANDLERS:
        why = HANDLERS[keyword][1](account, tokens[1:], negated)
    elif keyword in _NOT_MAPPED:
        arity, reason = _NOT_MAPPED[keyword]
        why = None if negated and arity == 0 else reason
    else:
        why = "not a fetchmail keyword"
    if why:
        account.report(option, why)
