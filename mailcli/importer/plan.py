"""What an import found: the account tables to write, and everything it did not map.

An `ImportPlan` is built by the format mappings (`msmtp`, `mpop`) from parsed files and
carried out by `importer.run`. It holds no secret in its repr: a clear password is kept
only to be stored in the keyring when asked, and is otherwise just counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Unmapped:
    """A setting the import left out, where it was, and why."""

    where: str  # FILE:LINE
    account: str
    command: str
    why: str

    def describe(self) -> str:
        return f"{self.where}: {self.account}: {self.command}: {self.why}"


@dataclass(frozen=True)
class ClearPassword:
    """A password written in clear in the old file, for the keyring entry KEY (USER@HOST,
    the one `password set` writes)."""

    key: str
    secret: str = field(repr=False)
    where: str = ""


@dataclass(frozen=True)
class StoredLogin:
    """A login whose password the old tool keeps in the keyring under its own attributes
    (libsecret: host, service smtp|pop3, user), to copy under KEY."""

    key: str
    host: str
    service: str
    user: str


@dataclass(frozen=True)
class StateSource:
    """The old tool's state file for one mailbox (mpop's UIDL file, getmail's oldmail
    file), to become mailcli's fetch state of `account`."""

    account: str
    user: str
    host: str
    state_file: Path
    where: str
    kind: str = "mpop"  # the file's format: "mpop" or "getmail"


@dataclass
class ImportPlan:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # NAME -> TOML table
    unmapped: list[Unmapped] = field(default_factory=list)
    passwords: list[ClearPassword] = field(default_factory=list)
    stored_logins: list[StoredLogin] = field(default_factory=list)
    states: list[StateSource] = field(default_factory=list)
    default_account: str | None = None
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)  # NAME -> (value, FILE:LINE)
    alias_files: set[Path] = field(default_factory=set)  # the aliases files read
    aliases_set: list[str] = field(default_factory=list)  # the [aliases] names written

    def merge(
        self, name: str, table: dict[str, Any], where: str, origins: Mapping[str, str] = {}
    ) -> None:
        """Add `table` as account NAME; an account of that name from the other tool (msmtp
        and mpop) is joined: its server tables are its own, a shared key that differs
        keeps the first value and the second is reported, at its line in `origins`
        (account key -> FILE:LINE) or else at `where`."""
        existing = self.accounts.setdefault(name, {})
        for key, value in table.items():
            if key not in existing or existing[key] == value:
                existing[key] = value
            elif isinstance(value, dict) and isinstance(existing[key], dict):
                existing[key] = {**value, **existing[key]}
            else:
                # No values: a password_command may hold a secret inline (echo s3cret).
                why = f"differs from the {key} an earlier file gave this account; kept that one"
                self.unmapped.append(Unmapped(origins.get(key, where), name, key, why))
