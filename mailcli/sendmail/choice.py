"""Which account sends a message: sendmail's choice by the sender, as msmtp makes it.

The order: the account `-a` names; else the account whose `from` matches the sender
(`-f`, or with `-t` the first address of the message's From field); else the default
account (`default_account`, else the only account); else none (the options and the
environment alone say where to connect).

An account's `from` matches the sender (`match_kind`):
- exactly: the same address, ignoring case; or the same once a `+detail` is taken off
  the sender's local part (`ann+lists@example.org` is `ann@example.org`), as msmtp does;
- as a pattern: a `from` holding `*`, `?` or `[` is a shell glob (`*` any run of
  characters, `?` one, `[...]` one of a set, `[!...]` one not in it; `/` and a leading
  `.` are ordinary characters), matched against the whole sender, ignoring case.
An exact match beats a pattern; between matches of one kind the first account in the
file wins. msmtp takes the first match in the file whichever its kind, compares
patterns with case and never matches a pattern against a sub-address; mailcli lets
`ann@example.org` keep its own account beside `*@example.org` wherever each is written,
and ignores case because mail clients and people vary it.

A pattern is no address: an account chosen with one takes its sender from `-f`, else the
message's From field; with neither, sendmail ends with 78 (`Account.literal_from`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal, NamedTuple

from mailcli.config import Account, Config
from mailcli.sendmail.arguments import SendmailArgs, end_of_input
from mailcli.smtp.rawmessage import RawMessage

ChoiceKind = Literal["named", "exact", "pattern", "default", "none"]


class AccountChoice(NamedTuple):
    """The account chosen (None: no account), how, and why in words."""

    account: Account | None
    kind: ChoiceKind
    why: str


def sender_to_match(args: SendmailArgs, raw: bytes) -> str | None:
    """`-f`'s address; else, with `-t`, the From field's first; None: neither (a bare
    name such as `-f root` matches no account: it gets a domain only from one)."""
    if args.sender is not None:
        address = args.sender.strip().removeprefix("<").removesuffix(">")
        return address if "@" in address else None
    return from_field(args, raw) if args.extract_recipients else None


def from_field(args: SendmailArgs, raw: bytes) -> str | None:
    """The first address of the message's From field, if it has one."""
    senders = RawMessage.parse_submission(end_of_input(raw, args)).addresses("from")
    return senders[0][1] if senders else None


def account_from(account: Account | None, args: SendmailArgs, raw: bytes) -> str | None:
    """The account's `from` as sendmail's default sender. A pattern is none: the sender
    then comes from `-f` or the From field, and with neither it is 78 saying why."""
    if account is None or not account.from_is_pattern:
        return account.from_addr if account else None
    if args.sender is None and from_field(args, raw) is None:
        account.literal_from()  # raises
    return None


def choose_account(config: Config, named: str | None, sender: str | None) -> AccountChoice:
    """`-a NAME`, else the best match for `sender` (None: not known), else the default."""
    if named is not None:
        return AccountChoice(config.select_account(named), "named", f"named with -a {named}")
    if sender:
        matched = best_match(config, sender)
        if matched is not None:
            return matched
    default = config.select_account(None)
    unmatched = f"no account's from matches {sender}; " if sender else ""
    if default is None:
        return AccountChoice(None, "none", f"{unmatched}no default account")
    if config.default_account is not None:
        return AccountChoice(default, "default", f"{unmatched}default_account = {default.name}")
    return AccountChoice(default, "default", f"{unmatched}the only account")


def best_match(config: Config, sender: str) -> AccountChoice | None:
    """The first exact match in the file's order, else the first pattern match."""
    found: dict[str, Account] = {}
    for account in config.accounts.values():
        kind = match_kind(account, sender)
        if kind is not None:
            found.setdefault(kind, account)
    if "exact" in found:
        account = found["exact"]
        same = _address(account.from_addr or "").lower() == sender.lower()
        how = "is" if same else "without its +detail is"
        return AccountChoice(account, "exact", f"{sender} {how} from = {account.from_addr}")
    if "pattern" in found:
        account = found["pattern"]
        return AccountChoice(account, "pattern", f"{sender} matches from = {account.from_addr}")
    return None


def match_kind(account: Account, sender: str) -> Literal["exact", "pattern"] | None:
    """How the account's `from` matches `sender` (a bare address), if it does."""
    if account.from_addr is None:
        return None
    sender = sender.lower()
    if account.from_is_pattern:
        return "pattern" if fnmatchcase(sender, account.from_addr.lower()) else None
    own = _address(account.from_addr).lower()
    return "exact" if own in (sender, _without_detail(sender)) else None


def _address(value: str) -> str:
    """The address of `Ann <ann@example.org>`; a bare address as it is."""
    if "<" not in value:
        return value.strip()
    from email.utils import parseaddr

    return parseaddr(value)[1]


def _without_detail(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}{at}{domain}" if at else address
