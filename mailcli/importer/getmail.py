"""getmail6's rc files (`getmailrc`, `getmailrc-NAME`), each one mailcli account.

The file is INI, read as getmail reads it (`configparser.RawConfigParser`: no `%`
interpolation). The account is named after the file: `getmailrc` is `getmail`,
`getmailrc-NAME` (or `getmailrc_NAME`) is NAME, any other file its own name. Each key of
[retriever], [destination] and [options] goes through `getmail_keys`' tables; other sections
(getmail's filters) are reported. Only single-user POP3 retrievers map: IMAP, multidrop
and broken-UIDL ones are reported, and the file gives no account then.

getmail's state is `oldmail-SERVER-PORT-USERNAME` in its directory (where the rc file
is), carried over by `importer.uidls` with `--with-state`.
"""

from __future__ import annotations

import re
from pathlib import Path

from mailcli.errors import DataError
from mailcli.importer.getmail_keys import Account, map_sections
from mailcli.importer.plan import ImportPlan, StateSource
from mailcli.importer.rcfile import read_text


def map_getmail(path: Path, plan: ImportPlan) -> None:
    """The rc file at `path` into `plan` as one account (see the module docstring)."""
    text = read_text(path)
    sections = parse_ini(text, path)
    account = Account(account_name(path), path, text, plan)
    if not map_sections(account, sections):
        return
    if account.pop3:
        account.table["pop3"] = account.pop3
    account.table["fetch"] = account.fetch
    plan.merge(account.name, account.table, f"{path}:1")
    _state_source(account, path)


def account_name(path: Path) -> str:
    name = re.sub(r"^getmailrc[-_.]?", "", path.name)
    return name or "getmail"


def parse_ini(text: str, path: Path) -> dict[str, dict[str, str]]:
    import configparser

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text, str(path))
    except configparser.MissingSectionHeaderError as exc:
        raise DataError(
            f"{path}:{exc.lineno}: not a getmail rc file (no [section] first)"
        ) from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else 1
        raise DataError(
            f"{path}:{line}: not a getmail rc file (a line is no key = value)"
        ) from None
    except configparser.Error as exc:
        raise DataError(f"{path}: not a getmail rc file ({exc.message})") from None
    return {name: dict(parser.items(name)) for name in parser.sections()}


def _state_source(account: Account, path: Path) -> None:
    server, user = account.pop3.get("host"), account.pop3.get("user")
    if not server or not user:
        return
    port = account.pop3.get("port") or (995 if account.pop3.get("security") == "tls" else 110)
    name = re.sub(r"[/\\:;<>|]+", "-", f"oldmail-{server}-{port}-{user}")
    source = StateSource(account.name, user, server, path.parent / name, f"{path}:1", "getmail")
    account.plan.states.append(source)
