"""The grammar msmtp and mpop share, read as their manuals give it; nothing is run.

A file is lines. Blank lines and lines whose first non-blank character is `#` are
ignored; every other line is a command and, after blanks, its argument: the rest of
the line, trailing blanks dropped (a `#` in it is part of it). An argument that starts
and ends with `"` loses those two quotes and nothing else: no escapes (`\\"` stays
backslash and quote, `\\n` backslash and n), a quote that is not at both ends stays,
exactly as msmtp 1.8 and mpop 1.4 read it (their `--pretend` shows it). A leading `~/`
in a file name is expanded by the mapping, not here.

`defaults` starts the defaults that every later account starts from; commands before
the first `account` or `defaults` belong to nothing (the tools ignore them: `outside`).
`account NAME [: A[,B...]]` starts an account: a copy of the defaults, then of what A,
B... set themselves or inherited (not their defaults), in order, each defined before in
this file: as msmtp does, settings as they are at that line.

Every setting keeps where it was written (file, line), so a report can name it.
`eval` (run a command, use its output as the line) is never run by the importer: it is
kept as a setting, which the mappings report.

Errors (65, naming file and line): an account without a name or defined twice, an
unknown parent, a file that is not UTF-8, one larger than `MAX_FILE_SIZE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailcli.errors import DataError, NoInputError

# Hand-written account files are a few KiB; a larger one is not one of them.
MAX_FILE_SIZE = 1024 * 1024
_BLANKS = " \t"


@dataclass(frozen=True)
class Setting:
    """One command line: what it says and where."""

    command: str
    argument: str
    path: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class RcAccount:
    """An account's commands after defaults and inheritance, the last of each winning."""

    name: str
    settings: dict[str, Setting] = field(default_factory=dict)
    line: int = 0
    own: set[str] = field(default_factory=set)  # set in the account or inherited, not defaults


@dataclass
class RcFile:
    path: Path
    accounts: dict[str, RcAccount] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)  # each command: its first line
    outside: list[Setting] = field(default_factory=list)  # before any account or defaults


def read_rcfile(path: Path) -> RcFile:
    """Parse `path` (see the module docstring)."""
    return parse_rcfile(read_text(path), path)


def read_text(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise NoInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise NoInputError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_SIZE:
        raise DataError(
            f"{path}: larger than {MAX_FILE_SIZE // 1024} KiB: not an account configuration"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


def parse_rcfile(text: str, path: Path) -> RcFile:
    parsed = RcFile(path)
    defaults = RcAccount("defaults")
    current: RcAccount | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip(_BLANKS + "\r")
        if not line or line.startswith("#"):
            continue
        setting = Setting(*split_command(line), path, number)
        parsed.commands.setdefault(setting.command, number)
        if setting.command == "defaults":
            current = defaults
        elif setting.command == "account":
            current = _start_account(setting, defaults, parsed)
        elif current is None:
            parsed.outside.append(setting)
        else:
            current.settings[setting.command] = setting
            current.own.add(setting.command)
    return parsed


def _start_account(setting: Setting, defaults: RcAccount, parsed: RcFile) -> RcAccount:
    name, colon, parents = setting.argument.partition(":")
    name = name.strip(_BLANKS)
    if not name:
        raise DataError(f"{setting.where}: `account` without a name")
    if name in parsed.accounts:  # both tools refuse the file
        raise DataError(f"{setting.where}: account {name!r} was already defined")
    account = RcAccount(name, dict(defaults.settings), setting.line)
    for parent in (p.strip(_BLANKS) for p in parents.split(",")) if colon else ():
        if parent not in parsed.accounts:
            raise DataError(
                f"{setting.where}: account {name!r} inherits {parent!r}, not defined before"
            )
        inherited = parsed.accounts[parent]
        account.settings.update({key: inherited.settings[key] for key in inherited.own})
        account.own |= inherited.own
    parsed.accounts[name] = account
    return account


def split_command(line: str) -> tuple[str, str]:
    """(command, argument) of a stripped, non-comment line."""
    end = next((i for i, c in enumerate(line) if c in _BLANKS), len(line))
    return line[:end], unquote(line[end:].lstrip(_BLANKS))


def unquote(argument: str) -> str:
    """Without the quotes at both ends, if both are there (mpop reads a delivery
    method's own argument this way too)."""
    if len(argument) >= 2 and argument[0] == argument[-1] == '"':
        return argument[1:-1]
    return argument
