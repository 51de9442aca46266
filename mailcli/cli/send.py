"""`mailcli send`: compose (or take) one message and submit it over SMTP."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailcli.cli import trail
from mailcli.cli.context import AppContext
from mailcli.cli.options import connection_options, quit_after_option
from mailcli.cli.trail import log_option
from mailcli.endpoint import ConnectionOptions
from mailcli.errors import DataError, ExitStatus, UsageError
from mailcli.smtp.phases import PHASES, TRANSACTION_PHASES, smtp_phase

if TYPE_CHECKING:
    from pathlib import Path

    from mailcli.smtp.compose import ComposeOptions
    from mailcli.smtp.dsn import DsnRequest
    from mailcli.smtp.envelope import Outgoing
    from mailcli.smtp.failover import RelayUsed
    from mailcli.smtp.session import SendResult

F = TypeVar("F", bound=Callable[..., Any])

# ComposeOptions' fields, in its order. File options are str: pathlib is imported only
# when one is given.
_COMPOSE_OPTIONS = (
    click.option(
        "--from", "from_addr", metavar="ADDR", help="From header (default: the account's)."
    ),
    click.option("--to", multiple=True, metavar="ADDRS", help="To; repeatable, comma lists."),
    click.option("--cc", multiple=True, metavar="ADDRS", help="Cc; repeatable, comma lists."),
    click.option(
        "--bcc", multiple=True, metavar="ADDRS", help="Bcc: envelope only, never a header."
    ),
    click.option("--subject", help="Subject (non-ASCII is RFC 2047 encoded)."),
    click.option("--body", metavar="TEXT", help="Body text (else --body-file, else stdin)."),
    click.option("--body-file", type=click.Path(dir_okay=False), metavar="FILE"),
    click.option(
        "--html", type=click.Path(dir_okay=False), metavar="FILE", help="Add an HTML alternative."
    ),
    click.option(
        "--attach",
        multiple=True,
        type=click.Path(),
        metavar="FILE",
        help="Attach a file; repeatable; MIME type guessed.",
    ),
    click.option("--header", multiple=True, metavar="'NAME: VALUE'", help="Extra header."),
    click.option("--reply-to", metavar="ADDRS"),
)


def compose_options(function: F) -> F:
    """Adds the options that shape a composed message and hands the command one
    `compose_options` argument, a `ComposeOptions`, built here once."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> object:
        from mailcli.smtp.compose import ComposeOptions

        given = {name: kwargs.pop(name) for name in ComposeOptions._fields}
        return function(*args, compose_options=ComposeOptions(**given), **kwargs)

    decorated: Any = wrapper
    for option in reversed(_COMPOSE_OPTIONS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


@click.command()
@compose_options
@click.option("--envelope-from", metavar="ADDR", help="MAIL FROM (default: From's address).")
@click.option(
    "--rcpt",
    multiple=True,
    metavar="ADDR",
    help="Envelope recipient; replaces To+Cc+Bcc; repeatable.",
)
@click.option(
    "--message", "message_file", metavar="FILE|-", help="Submit a ready RFC 5322 message as is."
)
@click.option("--dry-run", is_flag=True, help="Print envelope and message; connect to nothing.")
@click.option("--ehlo", metavar="NAME", help="EHLO name (default: the FQDN, else `domain`).")
@click.option(
    "--dsn-notify", metavar="never|success,failure,delay", help="DSN: when to notify (RFC 3461)."
)
@click.option("--dsn-return", metavar="full|headers", help="DSN: what a notification returns.")
@click.option("--envid", metavar="TEXT", help="DSN: envelope id, quoted in notifications.")
@log_option
@quit_after_option(PHASES)
@connection_options
@click.pass_obj
def send(
    app: AppContext,
    /,
    connection: ConnectionOptions,
    message_file: str | None,
    dry_run: bool,
    envelope_from: str | None,
    rcpt: tuple[str, ...],
    compose_options: ComposeOptions,
    dsn_notify: str | None,
    dsn_return: str | None,
    envid: str | None,
    log: str | None,
) -> int:
    """Compose and submit one message over SMTP.

    MAIL FROM and RCPT TO decide delivery; From/To/Cc are only headers. The exit status
    is 0 when every recipient was accepted, 67 when some were refused (the others got
    the message), 75 on a temporary failure.
    """
    dsn = _dsn_request(app, dsn_notify, dsn_return, envid)
    if message_file is not None:
        outgoing = _ready_message(app, message_file, compose_options, envelope_from, rcpt)
    else:
        outgoing = _composed(app, compose_options, envelope_from, rcpt)
    outgoing = outgoing._replace(dsn=dsn)
    if dry_run:
        _print_dry_run(app, outgoing)
        return ExitStatus.OK
    from mailcli.cli.relays import submit

    endpoint = app.endpoint("smtp", connection)
    quit_after = smtp_phase(app.quit_after)
    with trail.sending(app, log, endpoint, outgoing) as logged:
        # The account's server, then its fallbacks' (`smtp.failover`).
        result, relay = submit(app, endpoint, outgoing, quit_after)
        logged(result, relay)
    if result.dsn == "not offered":
        app.out.warning("the server does not offer DSN: sent without the notification requests")
    _print_result(app, result, relay)
    if quit_after in TRANSACTION_PHASES:
        app.out.info(f"mailcli: stopped after {quit_after}, as --quit-after asked (no DATA sent)")
    return result.exit_status


def _dsn_request(
    app: AppContext, notify: str | None, ret: str | None, envid: str | None
) -> DsnRequest | None:
    """--dsn-notify, --dsn-return, --envid, each over the account's key; None: none.
    (--ehlo needs no such step: it is a connection option, checked with the endpoint.)"""
    account = app.account
    asked = (notify, ret, envid) + ((account.dsn_notify, account.dsn_return) if account else ())
    if all(value is None for value in asked):
        return None  # without importing the DSN grammar, which most sends never need
    from mailcli.errors import ConfigError
    from mailcli.smtp.dsn import DsnRequest, parse_envid, parse_notify, parse_return

    keywords: tuple[str, ...] = ()
    if notify is not None:
        keywords = parse_notify(notify, "--dsn-notify")
    elif account is not None and account.dsn_notify is not None:
        key = f"accounts.{account.name}.dsn_notify"
        keywords = parse_notify(account.dsn_notify, key, ConfigError)
    ret = ret if ret is not None else account.dsn_return if account else None
    request = DsnRequest(
        notify=keywords,
        ret=parse_return(ret, "--dsn-return") if ret is not None else None,
        envid=parse_envid(envid, "--envid") if envid is not None else None,
    )
    return request or None


def _ready_message(
    app: AppContext,
    source: str,
    compose_options: ComposeOptions,
    envelope_from: str | None,
    rcpt: tuple[str, ...],
) -> Outgoing:
    from mailcli.smtp.compose import read_input_file
    from mailcli.smtp.rawmessage import prepare_message

    given = compose_options.given()
    if given:
        flags = ", ".join(given)
        raise UsageError(f"--message sends a ready message; it cannot be combined with {flags}")
    if source == "-":
        raw = app.terminal.stdin_bytes.read()
    else:
        raw = read_input_file(_path(source), "--message")
    return prepare_message(raw, envelope_from=envelope_from, rcpt=rcpt)


def _composed(
    app: AppContext, options: ComposeOptions, envelope_from: str | None, rcpt: tuple[str, ...]
) -> Outgoing:
    from mailcli.smtp.compose import compose

    account = app.account
    request = options.request(
        body=_body_text(app, options),
        # Without --from the account's from must be an address, not a pattern (78).
        account_from=account.literal_from() if account and not options.from_addr else None,
        account_domain=account.domain if account else None,
        envelope_from=envelope_from,
        rcpt=rcpt,
    )
    return compose(request)


def _body_text(app: AppContext, options: ComposeOptions) -> str | None:
    """--body, else --body-file, else stdin when it is not a terminal."""
    from mailcli.smtp.compose import read_input_file

    if options.body is not None and options.body_file is not None:
        raise UsageError("give --body or --body-file, not both")
    if options.body is not None:
        return options.body
    if options.body_file is not None:
        data = read_input_file(_path(options.body_file), "--body-file")
    elif not app.terminal.stdin_tty:
        data = app.terminal.stdin_bytes.read()
    else:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("the body is not UTF-8 text", hint="send it with --attach") from None


def _print_dry_run(app: AppContext, outgoing: Outgoing) -> None:
    envelope = outgoing.envelope
    if app.json:
        app.out.json(
            {
                "envelope_from": envelope.sender,
                "recipients": list(envelope.recipients),
                "smtputf8": outgoing.smtputf8,
                "message": b"".join(outgoing.chunks()).decode("utf-8", "surrogateescape"),
            }
        )
        return
    lines = [f"MAIL FROM:<{envelope.sender}>"] + [f"RCPT TO:<{r}>" for r in envelope.recipients]
    app.out.raw(("\n".join(lines) + "\n\n").encode())
    for piece in outgoing.chunks():
        app.out.raw(piece)


def _print_result(app: AppContext, result: SendResult, relay: RelayUsed) -> None:
    from mailcli.smtp.reply import ReplyCode

    if relay.fallback:
        app.out.info(f"mailcli: sent through fallback {relay.account} ({relay.server})")

    refused = result.refused
    if refused:
        app.out.error(
            f"{len(refused)} of {len(refused) + len(result.accepted)} recipients "
            f"refused: " + "; ".join(f"{a}: {r}" for a, r in refused.items())
        )
    if app.quiet and result.exit_status == ExitStatus.OK:
        return
    rows = [[address, "accepted", ""] for address in result.accepted]
    rows += [[address, "refused", str(reply)] for address, reply in refused.items()]
    if result.reply:
        rows.append(
            [
                "(message)",
                "sent" if result.reply.code == ReplyCode.COMPLETED else "failed",
                str(result.reply),
            ]
        )
    document = {**result.as_json(), "relay": relay.account}  # the account that took it
    app.out.table(["recipient", "status", "reply"], rows, document=document)


def _path(name: str) -> Path:
    from pathlib import Path

    return Path(name)
