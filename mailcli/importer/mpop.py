"""mpop's commands, each mapped onto mailcli's account keys or reported with why.

The POP3 server goes to `[accounts.NAME.pop3]`, delivery and retention to
`[accounts.NAME.fetch]`. `uidls_file` (default `~/.mpop_uidls/%U_at_%H`, %U the user,
%H the host) names the state `--with-state` carries over (`importer.uidls`).
"""

from __future__ import annotations

import re
from pathlib import Path

from mailcli.importer.common import SHARED, Handler, Mapper, expand_home, on_off
from mailcli.importer.plan import ImportPlan, StateSource
from mailcli.importer.rcfile import RcFile, Setting, unquote

DEFAULT_UIDLS_FILE = "~/.mpop_uidls/%U_at_%H"
_SIZE = re.compile(r"([0-9]{1,15})([kKmM]?)")
_DESTINATIONS = {"maildir": "maildir:", "mbox": "mbox:", "mda": "mda:"}


def delivery(mapper: Mapper, setting: Setting) -> str | None:
    method, _, argument = setting.argument.partition(" ")
    argument = unquote(argument.strip(" \t"))
    prefix = _DESTINATIONS.get(method.lower())
    if prefix is None:
        if method.lower() == "exchange":
            return "mailcli does not deliver to an Exchange pickup directory"
        return "not delivery maildir, mbox, mda or exchange"
    if not argument:
        return f"delivery {method} without its argument"
    target = argument if prefix == "mda:" else expand_home(argument)
    mapper.fetch["to"] = prefix + target  # %F in an MDA command: mailcli's is the same
    return None


def keep(mapper: Mapper, setting: Setting) -> str | None:
    value = on_off(setting, default=False)
    if value is None:
        return "expects on or off"
    mapper.fetch["delete"] = not value
    return None


def only_new(mapper: Mapper, setting: Setting) -> str | None:
    if on_off(setting, default=True) is not False:
        return None  # what mailcli's fetch always does
    return "mailcli's fetch takes only new mail; `mailcli fetch --all` takes every message"


def size_in_octets(text: str) -> int | None:
    match = _SIZE.fullmatch(text)
    if match is None:
        return None
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[match[2].lower()]


def killsize(mapper: Mapper, setting: Setting) -> str | None:
    if setting.argument.lower() == "off":
        return None
    size = size_in_octets(setting.argument)
    if size is None:
        return "not off or a size (N, Nk, Nm)"
    mapper.fetch["delete_larger_than"] = size
    return None


def skipsize(mapper: Mapper, setting: Setting) -> str | None:
    if setting.argument.lower() == "off":
        return None
    return "mailcli has no size above which mail is left on the server unread"


def header_filter(mapper: Mapper, setting: Setting) -> str | None:
    if not setting.argument:
        return None
    mapper.fetch["filter"] = setting.argument  # the same contract: exit 0, 1, 2 on TOP
    return None


def received_header(mapper: Mapper, setting: Setting) -> str | None:
    value = on_off(setting, default=True)
    if value is None:
        return "expects on or off"
    mapper.fetch["received_header"] = value
    return None


def uidls_file(mapper: Mapper, setting: Setting) -> str | None:
    mapper.flags["uidls_file"] = setting
    return None


TABLE: dict[str, Handler | str] = {
    **SHARED,
    "delivery": delivery,
    "keep": keep,
    "only_new": only_new,
    "killsize": killsize,
    "skipsize": skipsize,
    "filter": header_filter,
    "received_header": received_header,
    "uidls_file": uidls_file,
    "pipelining": "mailcli pipelines when the server's CAPA offers it",
}


def map_mpop(parsed: RcFile, plan: ImportPlan) -> None:
    """Every account of an mpop file into `plan` (merged with msmtp's of that name)."""
    for name, account in parsed.accounts.items():
        mapper = Mapper(account, "pop3", plan)
        table = mapper.run(TABLE)
        table["fetch"] = _mpop_defaults(mapper)
        plan.merge(name, table, f"{parsed.path}:{account.line}", mapper.origins())
        _state_source(mapper, plan, parsed.path)


def _mpop_defaults(mapper: Mapper) -> dict[str, object]:
    """mpop deletes what it retrieved and adds a Received line unless told otherwise;
    mailcli's defaults are the opposite, so they are written out. With keep on, mpop's
    killsize skips larger mail instead of deleting it: mailcli has no such skip."""
    fetch = {"delete": True, "received_header": True, **mapper.fetch}
    if not fetch["delete"] and fetch.pop("delete_larger_than", None) is not None:
        why = "with keep on, mpop skips larger mail; mailcli has no such skip"
        mapper.report(mapper.account.settings["killsize"], why)
    return fetch


def _state_source(mapper: Mapper, plan: ImportPlan, path: Path) -> None:
    user, host = mapper.server.get("user"), mapper.server.get("host")
    setting = mapper.flags.get("uidls_file")
    if not user or not host:
        return
    pattern = setting.argument if setting is not None else DEFAULT_UIDLS_FILE
    where = setting.where if setting is not None else f"{path}:{mapper.account.line}"
    uidls = Path(expand_home(pattern.replace("%U", user).replace("%H", host)))
    plan.states.append(StateSource(mapper.account.name, user, host, uidls, where))
