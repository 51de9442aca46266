"""getmail6's keys, section by section, each mapped onto mailcli's or reported with why
(the mapping table `importer.getmail` runs every key of an rc file through)."""

from __future__ import annotations

import ast
import os.path
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mailcli.endpoint import host_port
from mailcli.importer.common import parse_port, sha256_pin
from mailcli.importer.plan import ClearPassword, ImportPlan, Unmapped

_RETRIEVERS = {"SimplePOP3Retriever": "none", "SimplePOP3SSLRetriever": "tls"}
_TRUE, _FALSE = {"1", "yes", "true", "on"}, {"0", "no", "false", "off"}
Handler = Callable[["Account", str, str, str], str | None]  # (account, section, key, value)


class Account:
    """One rc file being mapped: the tables, and where each key was written."""

    def __init__(self, name: str, path: Path, text: str, plan: ImportPlan) -> None:
        self.name, self.path, self.plan = name, path, plan
        self.lines = text.splitlines()
        self.table: dict[str, Any] = {}
        self.pop3: dict[str, Any] = {}
        self.fetch: dict[str, Any] = {"delete": False}  # getmail's default: keep

    def where(self, section: str, key: str) -> str:
        """FILE:LINE of `key` in [section] (configparser keeps no line numbers)."""
        current = ""
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                current = stripped.strip("[]").strip()
            elif current == section and re.match(rf"{re.escape(key)}\s*[=:]", stripped, re.I):
                return f"{self.path}:{number}"
        return f"{self.path}:1"

    def report(self, section: str, key: str, why: str) -> None:
        unmapped = Unmapped(self.where(section, key), self.name, f"{section}.{key}", why)
        self.plan.unmapped.append(unmapped)


def boolean(text: str) -> bool | None:
    value = text.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def strings(text: str) -> tuple[str, ...] | None:
    """getmail's tuple of strings, e.g. ("/usr/bin/pass", "show", "mail")."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    value = (value,) if isinstance(value, str) else value
    ok = isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)
    return tuple(value) if ok else None


def password_command(account: Account, section: str, key: str, value: str) -> str | None:
    argv = strings(value)
    if not argv:
        return 'not a tuple of strings, e.g. ("/usr/bin/pass", "show", "mail")'
    account.table["password_command"] = shlex.join(argv)  # run without a shell by getmail
    return None


def password(account: Account, section: str, key: str, value: str) -> str | None:
    user, host = account.pop3.get("user"), account.pop3.get("host")
    if not user or not host:
        return "a password without a username and server to store it for"
    account.plan.passwords.append(
        ClearPassword(f"{user}@{host}", value, account.where(section, key))
    )
    return None


def server_value(name: str, convert: Callable[[str], Any] = str) -> Handler:
    def handle(account: Account, section: str, key: str, value: str) -> str | None:
        converted = convert(value)
        if converted is None or converted == "":
            return "an empty or invalid value"
        account.pop3[name] = converted
        return None

    return handle


_DESTINATION_TYPES = {"Maildir": "maildir:", "Mboxrd": "mbox:"}


def fingerprints(account: Account, section: str, key: str, value: str) -> str | None:
    written = strings(value) or ()
    pins = [pin for p in written if (pin := sha256_pin(p.lower().removeprefix("sha256:")))]
    if not pins or len(pins) != len(written):
        return "not SHA-256 fingerprints (mailcli pins SHA-256 only)"
    account.pop3["tls_fingerprint"] = pins
    return None


def use_apop(account: Account, section: str, key: str, value: str) -> str | None:
    flag = boolean(value)
    if flag is None:
        return "expects true or false"
    if flag:
        account.pop3["auth"] = "apop"
    return None


def fetch_flag(name: str, default_is_true_why: str = "") -> Handler:
    """A getmail boolean that is a fetch key; `default_is_true_why` for ones mailcli
    cannot do when true."""

    def handle(account: Account, section: str, key: str, value: str) -> str | None:
        flag = boolean(value)
        if flag is None:
            return "expects true or false"
        if default_is_true_why:
            return default_is_true_why if flag else None
        account.fetch[name] = flag
        return None

    return handle


def same_in_mailcli(account: Account, section: str, key: str, value: str) -> str | None:
    """A boolean whose every value mailcli matches already (it records each message
    as it stores it; it reads ~/.netrc after the keyring)."""
    return None if boolean(value) is not None else "expects true or false"


def fetch_count(name: str) -> Handler:
    """A whole number where 0 means "off" (days, octets)."""

    def handle(account: Account, section: str, key: str, value: str) -> str | None:
        if not value.strip().isdigit():
            return "not a whole number"
        if int(value):
            account.fetch[name] = int(value)
        return None

    return handle


def message_log(account: Account, section: str, key: str, value: str) -> str | None:
    if value.strip():
        account.table.setdefault("log", os.path.expanduser(value.strip()))
    return None


def message_log_syslog(account: Account, section: str, key: str, value: str) -> str | None:
    flag = boolean(value)
    if flag is None:
        return "expects true or false"
    if flag:
        account.table["log"] = "syslog"  # wins over a file: mailcli keeps one trail
    return None


def unless_zero(why: str) -> Handler:
    """A limit getmail turns off with 0, which is all mailcli does."""

    def handle(account: Account, section: str, key: str, value: str) -> str | None:
        return None if value.strip() in ("", "0") else why

    return handle


RETRIEVER: dict[str, Handler | str] = {
    "server": server_value("host"),
    "port": server_value("port", parse_port),
    "username": server_value("user"),
    "password_command": password_command,
    "use_apop": use_apop,
    "ca_certs": server_value("cafile", os.path.expanduser),
    "certfile": server_value("client_cert", os.path.expanduser),
    "keyfile": server_value("client_key", os.path.expanduser),
    "ssl_fingerprints": fingerprints,
    "timeout": "mailcli's timeout is the --timeout option of each run, not an account key",
    "ssl_version": "mailcli uses Python's TLS defaults (TLS 1.2 or later)",
    "ssl_ciphers": "mailcli uses Python's TLS defaults; no cipher string",
    "ssl_cert_hostname": "mailcli verifies the certificate for the host it connects to",
    "delete_dup_msgids": "mailcli fetches each UID once; duplicate Message-IDs are kept",
    "getmaildir": "the oldmail file is looked for beside the rc file",
}
OPTIONS: dict[str, Handler | str] = {
    "delete": fetch_flag("delete"),
    "delete_after": fetch_count("delete_after"),
    "delete_bigger_than": fetch_count("delete_larger_than"),
    "received": fetch_flag("received_header"),
    "read_all": fetch_flag(
        "",
        "getmail then fetches every message each run; mailcli fetches only new ones "
        "(`mailcli fetch --all` fetches all)",
    ),
    "delivered_to": fetch_flag("", "mailcli adds no Delivered-To field"),
    "message_log": message_log,
    "message_log_syslog": message_log_syslog,
    "max_message_size": unless_zero("mailcli has no size above which mail stays unread"),
    "verbose": "mailcli's -q and --trace options say how much it tells",
    "message_log_verbose": "mailcli's trail has one form",
    "max_messages_per_session": unless_zero("mailcli fetches every new message in one run"),
    "max_bytes_per_session": unless_zero("mailcli fetches every new message in one run"),
    "to_oldmail_on_each_mail": same_in_mailcli,
    "logfile": "mailcli's trail is the log key (message_log maps onto it)",
    "fingerprint": "mailcli shows a server's certificate with `mailcli check`",
    "use_netrc": same_in_mailcli,
    "netrc_file": "mailcli reads $NETRC or ~/.netrc",
    "skip_imap_fetch_size": "no IMAP in mailcli",
}


def destination(account: Account, values: Mapping[str, str]) -> list[tuple[str, str]]:
    """[destination] into fetch.to (and lmtp_rcpt); the keys it could not map, with why."""
    kind = values.get("type", "")
    prefix = _DESTINATION_TYPES.get(kind)
    left = {key: value for key, value in values.items() if key != "type"}
    if prefix is not None and left.get("path"):
        account.fetch["to"] = prefix + os.path.expanduser(left.pop("path"))
    elif kind == "MDA_external" and left.get("path"):
        return _external(account, left)
    elif kind == "MDA_lmtp" and left.get("host"):
        return _lmtp(account, left)
    else:
        return [("type", f"{kind or 'no type'}: not Maildir, Mboxrd, MDA_external or MDA_lmtp")]
    return [(key, "mailcli delivers as the user who runs it, with its own modes") for key in left]


def _external(account: Account, values: dict[str, str]) -> list[tuple[str, str]]:
    argv = [values.pop("path"), *(strings(values.pop("arguments", "()")) or ())]
    command = shlex.join(argv).replace("%(sender)", "%F")  # the envelope sender, inert
    account.fetch["to"] = "mda:" + command
    left = [(key, "mailcli runs the MDA as the user who runs it") for key in values]
    if "%(" in command:
        left.append(("arguments", "holds getmail substitutions other than %(sender)"))
    return left


def _lmtp(account: Account, values: dict[str, str]) -> list[tuple[str, str]]:
    host, port_text = values.pop("host"), values.pop("port", "24")
    port = parse_port(port_text)
    if "override" in values:
        account.fetch["lmtp_rcpt"] = values.pop("override")
    unmapped = [(key, "mailcli's LMTP delivery has no such setting") for key in values]
    if host.startswith("/"):
        account.fetch["to"] = f"lmtp:{host}"
    elif port is None:
        unmapped.insert(0, ("port", f"{port_text!r} is not a port number: no lmtp: target"))
    else:
        account.fetch["to"] = f"lmtp:{host_port(host, port)}"
    return unmapped


def map_sections(account: Account, sections: Mapping[str, Mapping[str, str]]) -> bool:
    """Every key of every section into `account`; False when the retriever is not one
    mailcli can be (the file then gives no account)."""
    retriever = sections.get("retriever", {})
    kind = retriever.get("type", "")
    if kind not in _RETRIEVERS:
        why = "only SimplePOP3Retriever and SimplePOP3SSLRetriever map (POP3, one user)"
        account.report("retriever", "type", f"{kind or 'no type'}: {why}; no account imported")
        return False
    account.pop3["security"] = _RETRIEVERS[kind]
    keys = {k: v for k, v in retriever.items() if k not in ("type", "password")}
    _run(account, "retriever", keys, RETRIEVER)
    if "password" in retriever:  # after username and server, which name its entry
        _report(
            account,
            "retriever",
            "password",
            password(account, "retriever", "password", retriever["password"]),
        )
    _run(account, "options", sections.get("options", {}), OPTIONS)
    for key, why in destination(account, sections.get("destination", {})):
        account.report("destination", key, why)
    for name in sections:
        if name not in ("retriever", "destination", "options"):
            why = "getmail's filters are not imported (mailcli's filter key judges headers)"
            account.report(name, next(iter(sections[name]), "-"), why)
    return True


def _run(
    account: Account, section: str, values: Mapping[str, str], table: Mapping[str, Handler | str]
) -> None:
    for key, value in values.items():
        handler = table.get(key, f"not a getmail {section} key")
        why = handler if isinstance(handler, str) else handler(account, section, key, value)
        _report(account, section, key, why)


def _report(account: Account, section: str, key: str, why: str | None) -> None:
    if why:
        account.report(section, key, why)
