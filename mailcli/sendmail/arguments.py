"""sendmail compatibility: the command line cron and scripts use, and the message rules.

`mailcli sendmail [-t] [-i|-oi] [-f ADDR] [-F NAME] [-a ACCOUNT] [-N DSN] [-R RET] [-V ENVID]
[--] [RCPT...]`, or
mailcli invoked through a link named `sendmail`. Parsed by hand, as getopt would,
because sendmail's options do not fit a modern parser: values attach (`-FCronDaemon`,
`-odi`), flags cluster (`-ti`), and options may follow the recipients.

Recipients: those on the command line, plus with `-t` those the header names (the rule
of Postfix's and msmtp's sendmail: -t adds, it does not replace): Resent-To, Resent-Cc
and Resent-Bcc when the message has any, else To, Cc and Bcc (`RawMessage`). A name
without a domain (`root`) goes through `[aliases]` (`default` catches every local
name), then gets the account's `domain`; one that still has none is an error (65),
before any connection.

Delivery status notifications (RFC 3461, `smtp.dsn`): `-N never|success,failure,delay`,
`-R full|hdrs`, `-V ENVID`, over the account's `dsn_notify`/`dsn_return`; a bad value
is a usage error (64).

The message: input whose first line is no header field is all body (Postfix's rule);
mailcli adds From, Date and Message-ID to it, and no To (nor does Postfix).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailcli.errors import DataError, UsageError
from mailcli.smtp.envelope import Envelope, Outgoing, check_no_injection, prepared
from mailcli.smtp.idn import address_to_ascii, local_part_is_ascii
from mailcli.smtp.rawmessage import RawMessage

if TYPE_CHECKING:
    from mailcli.smtp.dsn import DsnRequest

# Options that take a value, attached (-fADDR) or as the next argument (-f ADDR).
_VALUE_OPTIONS = set("fFraoBONRVXb")
# Accepted and ignored: what callers pass that has no meaning for a submission client.
_IGNORED_VALUE_OPTIONS = set("oBOX")
_FLAGS = set("tivUGnm")
_LONE_DOT = re.compile(rb"(?:^|\n)\.\r?(?:\n|$)")


@dataclass
class SendmailArgs:
    """What a sendmail command line asked for."""

    extract_recipients: bool = False  # -t
    sender: str | None = None  # -f / -r
    full_name: str | None = None  # -F
    account: str | None = None  # -a
    verbose: bool = False  # -v
    ignore_dots: bool = False  # -i / -oi: a line with a lone "." does not end the input
    recipients: list[str] = field(default_factory=list)
    dsn_notify: str | None = None  # -N, checked
    dsn_return: str | None = None  # -R, checked: "full" or "headers"
    envid: str | None = None  # -V, checked


def parse_args(argv: Sequence[str]) -> SendmailArgs:
    """Parse like getopt with permutation; unknown options are usage errors (64)."""
    parsed = SendmailArgs()
    index = 0
    while index < len(argv):
        argument = argv[index]
        index += 1
        if argument == "--":
            parsed.recipients.extend(argv[index:])
            break
        if not argument.startswith("-") or argument == "-":
            parsed.recipients.append(argument)
            continue
        index = _parse_cluster(argv, index, argument[1:], parsed)
    return parsed


def _parse_cluster(argv: Sequence[str], index: int, cluster: str, parsed: SendmailArgs) -> int:
    """One `-xyz` argument; returns the index of the next unread argument."""
    for position, letter in enumerate(cluster):
        if letter in _FLAGS:
            parsed.extract_recipients |= letter == "t"
            parsed.verbose |= letter == "v"
            parsed.ignore_dots |= letter == "i"
            continue
        if letter not in _VALUE_OPTIONS:
            raise UsageError(f"sendmail: unknown option -{letter}")
        value = cluster[position + 1 :]
        if not value:
            if index >= len(argv):
                raise UsageError(f"sendmail: option -{letter} needs a value")
            value, index = argv[index], index + 1
        _apply_value(letter, value, parsed)
        return index
    return index


def _apply_value(letter: str, value: str, parsed: SendmailArgs) -> None:
    if letter == "o" and value == "i":
        parsed.ignore_dots = True
    if letter in _IGNORED_VALUE_OPTIONS:
        return
    if letter == "b":
        if value != "m":  # -bm: deliver mail, the default; -bp, -bs, ... are not for us
            raise UsageError(f"sendmail: mode -b{value} is not supported (only -bm)")
    elif letter in "fr":
        parsed.sender = value
    elif letter == "F":
        parsed.full_name = value
    elif letter == "a":
        parsed.account = value
    elif letter in "NRV":
        _apply_dsn(letter, value, parsed)


def _apply_dsn(letter: str, value: str, parsed: SendmailArgs) -> None:
    from mailcli.smtp.dsn import parse_envid, parse_notify, parse_return

    if letter == "N":
        parse_notify(value, "sendmail: -N")
        parsed.dsn_notify = value
    elif letter == "R":
        parsed.dsn_return = parse_return(value, "sendmail: -R")
    else:
        parsed.envid = parse_envid(value, "sendmail: -V")


@dataclass(frozen=True)
class Addressing:
    """The account facts that turn local names into addresses."""

    domain: str | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    from_addr: str | None = None  # the account's `from`, e.g. "Ann <ann@example.org>"
    dsn_notify: str | None = None  # the account's DSN defaults (-N and -R override them)
    dsn_return: str | None = None


def qualify(name: str, addressing: Addressing, *, use_aliases: bool = True) -> list[str]:
    """`root` -> aliases -> `root@domain`; an address with a domain stays as it is."""
    check_no_injection("address", name)
    name = name.strip().removeprefix("<").removesuffix(">")
    if "@" in name:
        return [name]
    if use_aliases:
        target = addressing.aliases.get(name) or addressing.aliases.get("default")
        if target:
            parts = [part.strip() for part in target.split(",") if part.strip()]
            return [q for part in parts for q in qualify(part, addressing, use_aliases=False)]
    if not addressing.domain:
        raise DataError(
            f"address {name!r} has no domain",
            hint=f'add `{name} = "someone@example.org"` to [aliases] or set `domain` '
            "in the account",
        )
    return [f"{name}@{addressing.domain}"]


def end_of_input(raw: bytes, args: SendmailArgs) -> bytes:
    """Without -i, a line holding only "." ends the message, as in classic sendmail."""
    if args.ignore_dots:
        return raw
    match = _LONE_DOT.search(raw)
    if match is None:
        return raw
    return raw[: match.start() + match.group().startswith(b"\n")]  # keep the line's "\n"


def prepare(raw: bytes, args: SendmailArgs, addressing: Addressing) -> Outgoing:
    """The message from stdin -> envelope and the bytes to transmit."""
    # The account's settings reach the From field and the envelope as they are.
    check_no_injection("the account's from", addressing.from_addr or "")
    check_no_injection("the account's domain", addressing.domain or "")
    message = RawMessage.parse_submission(end_of_input(raw, args))
    sender = _envelope_sender(args, message, addressing)
    names = list(args.recipients)
    if args.extract_recipients:
        names += message.header_recipients()
    elif not names:
        raise UsageError("sendmail: no recipients (name them, or use -t)")
    recipients = list(dict.fromkeys(r for name in names for r in qualify(name, addressing)))
    if not recipients:
        raise DataError("sendmail: the message names no recipients (To/Cc/Bcc)")
    added = b"" if message.has("from") else _from_field(args, addressing, sender)
    data = message.transmitted(sender=sender, added_fields=added)
    return prepared(Envelope(sender, tuple(recipients)), data)


def _envelope_sender(args: SendmailArgs, message: RawMessage, addressing: Addressing) -> str:
    """-f, else the account's from, else the message's From."""
    from email.utils import parseaddr

    if args.sender is not None:
        if args.sender.strip() in ("", "<>"):
            return ""  # the null sender, for bounces and auto-replies
        return qualify(args.sender, addressing, use_aliases=False)[0]
    if addressing.from_addr:
        return qualify(parseaddr(addressing.from_addr)[1], addressing, use_aliases=False)[0]
    senders = message.addresses("from")
    if senders:
        return qualify(senders[0][1], addressing, use_aliases=False)[0]
    raise DataError("no sender: give -f ADDR, or set `from` in the account")


def _from_field(args: SendmailArgs, addressing: Addressing, sender: str) -> bytes:
    """A From field for a message that has none: -F names it, else the account's from.
    The address: the account's, else the envelope sender's, else (the null sender)
    MAILER-DAEMON at the account's domain, as Postfix's cleanup writes it."""
    from email.utils import formataddr, parseaddr

    account_name, account_addr = parseaddr(addressing.from_addr or "")
    address = account_addr or sender or _mailer_daemon(addressing)
    if local_part_is_ascii(address):  # composed here: its domain as in the envelope
        address = address_to_ascii(address)
    name = args.full_name if args.full_name is not None else account_name
    if args.full_name is not None:
        check_no_injection("-F", args.full_name)
    try:
        text = formataddr((name, address))
    except UnicodeEncodeError:  # a non-ASCII mailbox: SMTPUTF8 carries it raw
        text = f"{name} <{address}>" if name else address
    return f"From: {text}\r\n".encode()


def _mailer_daemon(addressing: Addressing) -> str:
    if not addressing.domain:
        raise DataError(
            "the null sender (-f '<>') gives no address for the From field the message lacks",
            hint="add a From field to the message, or set `from` or `domain` in the account",
        )
    return f"MAILER-DAEMON@{addressing.domain}"


def dsn_request(args: SendmailArgs, addressing: Addressing) -> DsnRequest | None:
    """-N, -R, -V over the account's keys (checked when read); None when nothing asks."""
    from mailcli.errors import ConfigError
    from mailcli.smtp.dsn import DsnRequest, parse_notify

    keywords: tuple[str, ...] = ()
    if args.dsn_notify is not None:
        keywords = parse_notify(args.dsn_notify, "sendmail: -N")
    elif addressing.dsn_notify is not None:
        keywords = parse_notify(addressing.dsn_notify, "the account's dsn_notify", ConfigError)
    request = DsnRequest(
        notify=keywords,
        ret=args.dsn_return or addressing.dsn_return,
        envid=args.envid,
    )
    return request or None
