"""`account import`: find the old tools' files, map them, and write the result once.

Order, so that nothing is half-done by a bad input: every file is read and mapped, and
with `--with-state` every old state file and mailcli state read, before anything is
written; then the state is recorded, and then the config file is written in one atomic
replace (validated first, comments kept), so that a run killed between the two is done by
its rerun; then the passwords go to the keyring
(`--with-passwords`): a keyring that fails then says the rest is done. A dry run writes
nothing and returns the text it would write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mailcli.config import Config, add_account_tables
from mailcli.errors import DataError, UsageError
from mailcli.importer.fetchmail_keys import map_fetchmail
from mailcli.importer.getmail import map_getmail
from mailcli.importer.mpop import TABLE as MPOP_TABLE
from mailcli.importer.mpop import map_mpop
from mailcli.importer.msmtp import TABLE as MSMTP_TABLE
from mailcli.importer.msmtp import map_msmtp
from mailcli.importer.plan import ImportPlan, Unmapped
from mailcli.importer.rcfile import RcFile, read_rcfile

Format = Literal["msmtp", "mpop", "getmail", "fetchmail"]
FORMATS: tuple[Format, ...] = ("msmtp", "mpop", "getmail", "fetchmail")
# Commands only one of the two tools has: what tells their files apart.
_ONLY_MSMTP = set(MSMTP_TABLE) - set(MPOP_TABLE)
_ONLY_MPOP = set(MPOP_TABLE) - set(MSMTP_TABLE)
_OUTSIDE = {"msmtp": "msmtp ignores it", "mpop": "mpop refuses such a file"}


@dataclass
class ImportRequest:
    files: list[Path]
    forced: Format | None = None
    dry_run: bool = False
    with_passwords: bool = False
    with_state: bool = False
    replace: bool = False


@dataclass
class ImportOutcome:
    plan: ImportPlan
    text: str  # the config file's new text
    written: bool
    passwords_stored: list[str] = field(default_factory=list)  # keyring keys
    states: list[tuple[str, int]] = field(default_factory=list)  # (account, UIDs added)


def default_files(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The old tools' files that exist, where each tool looks for its own."""
    home = Path(environ.get("HOME") or Path.home())
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    candidates = [home / ".msmtprc", xdg / "msmtp/config", home / ".mpoprc", xdg / "mpop/config"]
    for getmaildir in (home / ".getmail", xdg / "getmail"):
        candidates += sorted(getmaildir.glob("getmailrc*"))
    candidates.append(home / ".fetchmailrc")
    return [path for path in candidates if path.is_file()]


def named_format(path: Path) -> Format | None:
    """The format the file's name says, as each tool names its files."""
    text = str(path)
    for name in FORMATS:
        if name in path.name or f"/{name}/" in text:
            return name
    return None


def detect_format(path: Path, parsed: RcFile) -> Format:
    """By the file's name, else by what it holds: [sections] are getmail's, `poll` and
    `skip` fetchmail's, and commands only one of msmtp and mpop has tell those apart."""
    named = named_format(path)
    if named is not None:
        return named
    first = min(parsed.commands.items(), key=lambda item: item[1], default=None)
    if first is not None and first[0].startswith("["):
        return "getmail"
    if first is not None and first[0] in ("poll", "skip", "set"):
        return "fetchmail"
    msmtp, mpop = _ONLY_MSMTP & set(parsed.commands), _ONLY_MPOP & set(parsed.commands)
    if msmtp and not mpop:
        return "msmtp"
    if mpop and not msmtp:
        return "mpop"
    known = set(MSMTP_TABLE) | set(MPOP_TABLE)
    if first is not None and not known & set(parsed.commands):
        raise DataError(
            f"{path}:{first[1]}: {first[0]!r} is no msmtp or mpop command and the file no "
            "getmail or fetchmail file: not a file the import reads"
        )
    raise DataError(
        f"{path}: cannot tell an msmtp file from an mpop one",
        hint="name the format: --from msmtp or --from mpop",
    )


def build_plan(request: ImportRequest) -> ImportPlan:
    if not request.files:
        raise UsageError("no msmtp, mpop, getmail or fetchmail file found: name one")
    plan = ImportPlan()
    kinds = [(request.forced or _format_of(path), path) for path in request.files]
    # msmtp's files first: where two set an account key, the sending tool's wins.
    for kind, path in sorted(kinds, key=lambda item: item[0] != "msmtp"):
        if kind in ("getmail", "fetchmail"):
            (map_getmail if kind == "getmail" else map_fetchmail)(path, plan)
            continue
        rc = read_rcfile(path)
        (map_msmtp if kind == "msmtp" else map_mpop)(rc, plan)
        why = "before any account or defaults: " + _OUTSIDE[kind]
        plan.unmapped += [Unmapped(s.where, "-", s.command, why) for s in rc.outside]
    return plan


def _format_of(path: Path) -> Format:
    return named_format(path) or detect_format(path, read_rcfile(path))


def import_accounts(config: Config, request: ImportRequest, state_dir: Path) -> ImportOutcome:
    """Carry out an import (see the module docstring)."""
    from mailcli.importer.uidls import check_state, read_state_file, record_state

    plan = build_plan(request)
    wanted = plan.states if request.with_state else []
    states = [(s, read_state_file(s)) for s in wanted]
    for source in wanted:
        check_state(source, state_dir)
    aliases = _aliases_to_set(config, plan, request.replace)

    def add_tables(write: bool) -> str:
        return add_account_tables(
            config,
            plan.accounts,
            replace=request.replace,
            default=plan.default_account,
            write=write,
            aliases=aliases,
        )

    outcome = ImportOutcome(plan, add_tables(write=False), not request.dry_run)
    if request.dry_run:  # what a real run would record at most
        outcome.states = [(s.account, len(set(uids))) for s, uids in states]
        return outcome
    # The state before the config: a run killed between the two has not written the
    # account, so its rerun records again (nothing twice) and writes it. The other order
    # would leave an account whose first fetch downloads what the old tool delivered.
    outcome.states = [(s.account, record_state(s, uids, state_dir)) for s, uids in states]
    add_tables(write=True)
    if request.with_passwords:  # last: a keyring that fails leaves the rest done
        outcome.passwords_stored = _store_passwords(plan)
    return outcome


def _aliases_to_set(config: Config, plan: ImportPlan, replace: bool) -> dict[str, str]:
    """The aliases to write: new ones, and changed ones only with --replace (reported
    otherwise, like an existing account, but without stopping the import)."""
    wanted: dict[str, str] = {}
    for name, (value, where) in plan.aliases.items():
        existing = config.aliases.get(name)
        if existing == value:
            continue
        if existing is not None and not replace:
            why = f"[aliases] already has {existing!r}; kept (--replace overwrites it)"
            plan.unmapped.append(Unmapped(where, "aliases", name, why))
            continue
        wanted[name] = value
    plan.aliases_set = list(wanted)
    return wanted


def _store_passwords(plan: ImportPlan) -> list[str]:
    """Clear passwords, then those msmtp and mpop keep in the keyring, into mailcli's
    entries; the keys stored."""
    from mailcli.auth.credentials import KeyringUnavailable, keyring_set
    from mailcli.errors import CredentialsError

    found = [(p.key, p.secret) for p in plan.passwords] + _stored_logins(plan)
    stored: list[str] = []
    first: dict[str, str] = {}
    for key, secret in found:  # one entry per USER@HOST: the first found
        first.setdefault(key, secret)
    for key, secret in first.items():
        try:
            keyring_set(key, secret)
        except KeyringUnavailable as exc:
            raise CredentialsError(
                f"the accounts are written, but the password for {key} could not be stored: {exc}",
                hint="store it with `mailcli password set`",
            ) from None
        stored.append(key)
    return stored


def _stored_logins(plan: ImportPlan) -> list[tuple[str, str]]:
    from mailcli.auth.libsecret import KeyringUnavailable, lookup_stored_login

    found: list[tuple[str, str]] = []
    for login in plan.stored_logins:
        try:
            secret = lookup_stored_login(login.host, login.service, login.user)
        except KeyringUnavailable:
            return found  # no Secret Service: the tools cannot have stored any there
        if secret is not None:
            found.append((login.key, secret))
    return found
