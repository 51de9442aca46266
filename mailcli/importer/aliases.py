"""msmtp's aliases file (its `aliases` command) into mailcli's `[aliases]` table.

The file is read as msmtp 1.8 reads it: `#` starts a comment anywhere on a line; a line
left non-blank is `NAME: ADDRESS, ADDRESS...` with exactly one colon; NAME is a local
name (no `@`), given once; blanks around names and addresses are dropped; a line is at
most 511 characters. msmtp refuses the whole file over one bad line; the import keeps
the good lines and reports each bad one by file and line.

msmtp expands a target without `@` again (through its own entry, else `default`, at
most 16 levels deep); mailcli's `[aliases]` expands once. So each entry is written
expanded, with the addresses msmtp would send to. An entry that expands in a loop, or
to a local name msmtp would send as it is (mailcli would add the account's `domain`),
is reported instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mailcli.errors import MailcliError
from mailcli.importer.plan import ImportPlan, Unmapped
from mailcli.importer.rcfile import read_text

MAX_LINE = 511  # msmtp reads lines into 512 bytes and refuses a longer one
MAX_DEPTH = 16  # msmtp's limit on nested expansion
ACCOUNT = "aliases"  # what a report names instead of an account


class _Loop(Exception):
    pass


def read_aliases(path: Path, where: str, plan: ImportPlan) -> None:
    """The aliases file at `path` (named at `where`, FILE:LINE) into `plan.aliases`;
    read once per file however many accounts name it."""
    if path in plan.alias_files:
        return
    plan.alias_files.add(path)
    try:
        text = read_text(path)
    except MailcliError as exc:  # msmtp too fails only when it sends to a local name
        plan.unmapped.append(Unmapped(where, ACCOUNT, "aliases", str(exc)))
        return
    entries = _parse(path, text, plan)
    table = {name: targets for name, (targets, _) in entries.items()}
    for name, (targets, line) in entries.items():
        try:
            addresses = _expand(targets, table, 0)
        except _Loop:
            _report(plan, line, name, f"expands more than {MAX_DEPTH} levels deep (a loop?)")
            continue
        local = [a for a in addresses if "@" not in a]
        if local:
            why = f"expands to the local name {local[0]!r}, which msmtp sends as it is"
            _report(plan, line, name, why + " and mailcli would give the account's domain")
            continue
        _add(plan, name, ", ".join(addresses), line)


def _parse(path: Path, text: str, plan: ImportPlan) -> dict[str, tuple[list[str], str]]:
    """NAME -> (its targets, FILE:LINE); bad lines reported."""
    entries: dict[str, tuple[list[str], str]] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        where = f"{path}:{number}"
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        name, *rest = (part.strip() for part in line.split(":"))
        why = _problem(raw, name, rest, entries)
        if why:
            _report(plan, where, name or "-", why + "; msmtp refuses the whole file for it")
            continue
        targets = [target.strip() for target in rest[0].split(",")]
        entries[name] = ([t for t in targets if t] or [""], where)
    return entries


def _problem(raw: str, name: str, rest: list[str], entries: Mapping[str, object]) -> str | None:
    if len(raw) > MAX_LINE:
        return f"longer than {MAX_LINE} characters"
    if len(rest) != 1:
        return "not NAME: ADDRESS, ... (one colon)"
    if not name or "@" in name:
        return "the name before the colon must be a local name (no @)"
    if name in entries:
        return "given twice (the first is kept)"
    return None


def _expand(targets: list[str], entries: dict[str, list[str]], depth: int) -> list[str]:
    """msmtp's expansion: a target without @ through its entry, else `default`."""
    if depth > MAX_DEPTH:
        raise _Loop
    found: list[str] = []
    for target in targets:
        if "@" in target or not target:
            found.append(target)
            continue
        nested = entries.get(target, entries.get("default"))
        found += [target] if nested is None else _expand(nested, entries, depth + 1)
    return found


def _add(plan: ImportPlan, name: str, value: str, where: str) -> None:
    """A second file's different entry of one name is reported: mailcli has one table."""
    if name in plan.aliases and plan.aliases[name][0] != value:
        first = plan.aliases[name][1]
        _report(plan, where, name, f"differs from the entry at {first}; kept that one")
        return
    plan.aliases.setdefault(name, (value, where))


def _report(plan: ImportPlan, where: str, name: str, why: str) -> None:
    plan.unmapped.append(Unmapped(where, ACCOUNT, name, why))
