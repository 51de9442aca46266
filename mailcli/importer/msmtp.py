"""msmtp's commands, each mapped onto mailcli's account keys or reported with why.

The SMTP server goes to `[accounts.NAME.smtp]`; msmtp's `domain` (the EHLO argument)
is mailcli's `ehlo`, and its `maildomain` (what qualifies bare names) mailcli's
`domain`. The file `aliases` names goes to the config's `[aliases]` (`importer.aliases`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailcli.importer.aliases import read_aliases
from mailcli.importer.common import SHARED, Handler, Mapper, account_key, expand_home, on_off
from mailcli.importer.plan import ImportPlan
from mailcli.importer.rcfile import RcFile, Setting

_DSN_NOTIFY = {"never", "failure", "delay", "success"}


def ehlo(mapper: Mapper, setting: Setting) -> str | None:
    name = setting.argument
    if any(pattern in name for pattern in ("%H", "%C", "%M")):
        return "holds %H/%C/%M, which mailcli does not substitute: give the name itself"
    if not name:
        return "an empty name"
    mapper.table["ehlo"] = name
    return None


def dsn_notify(mapper: Mapper, setting: Setting) -> str | None:
    value = setting.argument.lower()
    if value == "off":  # msmtp's default: the server decides
        return None
    if not value or not set(value.split(",")) <= _DSN_NOTIFY:
        return "not off, never or a list of failure, delay, success"
    mapper.table["dsn_notify"] = value
    return None


def dsn_return(mapper: Mapper, setting: Setting) -> str | None:
    value = setting.argument.lower()
    if value == "off":
        return None
    if value not in ("full", "headers"):
        return "not off, headers or full"
    mapper.table["dsn_return"] = value
    return None


def logfile(mapper: Mapper, setting: Setting) -> str | None:
    if not setting.argument:
        return None  # msmtp's "no log"
    if setting.argument == "-":
        return "mailcli's trail goes to a file or syslog, not standard output"
    mapper.table.setdefault("log", expand_home(setting.argument))
    return None


def syslog(mapper: Mapper, setting: Setting) -> str | None:
    if on_off(setting, default=False) is False:
        return None
    if setting.argument.lower() not in ("", "on", "log_mail"):
        return "mailcli logs to syslog's mail facility only; mapped to log = syslog is left out"
    mapper.table["log"] = "syslog"  # wins over a logfile: msmtp logs to both, mailcli once
    return None


def protocol(mapper: Mapper, setting: Setting) -> str | None:
    if setting.argument.lower() in ("", "smtp"):
        return None
    return "mailcli sends with SMTP only (fetch --to lmtp: delivers fetched mail over LMTP)"


def aliases(mapper: Mapper, setting: Setting) -> str | None:
    if not setting.argument:
        return None  # msmtp's default: no aliases
    read_aliases(Path(expand_home(setting.argument)), setting.where, mapper.plan)
    return None


def keep_bcc(mapper: Mapper, setting: Setting) -> str | None:
    if on_off(setting, default=True) is not False:
        return None
    return "mailcli always removes Bcc fields before sending"


TABLE: dict[str, Handler | str] = {
    **SHARED,
    "from": account_key("from", why="an empty address"),
    "domain": ehlo,
    "maildomain": account_key("domain"),
    "dsn_notify": dsn_notify,
    "dsn_return": dsn_return,
    "logfile": logfile,
    "syslog": syslog,
    "protocol": protocol,
    "logfile_time_format": "mailcli's trail has its own time format",
    "aliases": aliases,
    "auto_from": "removed from msmtp 1.8; give from (a pattern such as *@example.org works)",
    "allow_from_override": "mailcli always lets -f and --from choose the sender",
    "set_from_header": "mailcli adds a From field only when the message has none",
    "set_date_header": "mailcli adds a Date field only when the message has none",
    "set_msgid_header": "mailcli adds a Message-ID only when the message has none",
    "remove_bcc_headers": keep_bcc,
    "undisclosed_recipients": "mailcli has no undisclosed-recipients rewriting",
    "add_missing_from_header": "mailcli adds a From field only when the message has none",
    "add_missing_date_header": "mailcli adds a Date field only when the message has none",
}


def map_msmtp(parsed: RcFile, plan: ImportPlan) -> None:
    """Every account of an msmtp file into `plan`. An account `default` that only
    inherits one other account makes that one the default, as in msmtp's manual."""
    for name, account in parsed.accounts.items():
        parent = _aliases_one(parsed) if name == "default" else None
        if parent is not None:
            plan.default_account = parent
            continue
        mapper = Mapper(account, "smtp", plan)
        table: dict[str, Any] = mapper.run(TABLE)
        plan.merge(name, table, f"{parsed.path}:{account.line}", mapper.origins())
        if name == "default":
            plan.default_account = name


def _aliases_one(parsed: RcFile) -> str | None:
    """The parent of `account default : PARENT` when that line is all the account has."""
    account = parsed.accounts["default"]
    lines = {s.line for s in account.settings.values()}
    parents = [
        n for n, a in parsed.accounts.items() if n != "default" and a.settings == account.settings
    ]
    return parents[0] if parents and not any(n > account.line for n in lines) else None
