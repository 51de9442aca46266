"""`mailcli sendmail` (also as a link named `sendmail`) and `mailcli queue list|run|remove`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from mailcli.cli import trail
from mailcli.cli.context import AppContext
from mailcli.cli.trail import log_option

if TYPE_CHECKING:
    from mailcli.config import Account
    from mailcli.sendmail.arguments import SendmailArgs
    from mailcli.sendmail.deliver import QueueReport, RelayFactory
    from mailcli.sendmail.spool import Spool


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
    add_help_option=True,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def sendmail(app: AppContext, args: tuple[str, ...]) -> int:
    """sendmail-compatible submission: message on stdin, recipients as arguments.

    \b
    mailcli sendmail [-t] [-i|-oi] [-f ADDR] [-F NAME] [-a ACCOUNT] [--] [RCPT...]
    -N never|success,failure,delay, -R full|hdrs, -V ENVID: delivery status notifications.
    Other -o*, -B*, -O*, -od* options are accepted and ignored. On a temporary failure
    the message is queued durably and sendmail exits 0 with a notice on stderr, as
    Postfix's sendmail does (a 75 made mail clients report a failure and resend a
    message that `mailcli queue run` then delivered too). A message that could not be
    queued is never 0: 74 full disk, 73 queue not writable.
    """
    from mailcli.sendmail.arguments import Addressing, dsn_request, parse_args, prepare
    from mailcli.sendmail.choice import account_from
    from mailcli.sendmail.deliver import deliver_or_spool

    parsed = parse_args(args)
    app.trace = app.trace or parsed.verbose
    raw = app.terminal.stdin_bytes.read()
    account = _chosen_account(app, parsed, raw)
    addressing = Addressing(
        domain=account.domain if account else None,
        aliases=app.config.aliases,
        from_addr=account_from(account, parsed, raw),
        dsn_notify=account.dsn_notify if account else None,
        dsn_return=account.dsn_return if account else None,
    )
    outgoing = prepare(raw, parsed, addressing)._replace(dsn=dsn_request(parsed, addressing))
    with trail.delivering(app, account, outgoing) as logged:
        delivery = deliver_or_spool(
            outgoing,
            account=account.name if account else None,
            open_relays=_relay_factory(app),
            spool=_spool(),
        )
        logged(delivery)
    if delivery.result is not None and delivery.result.dsn == "not offered":
        app.out.warning("the server does not offer DSN: sent without the notification requests")
    for address, reply in delivery.refused.items():
        app.out.error(f"recipient {address} refused permanently: {reply}")
    if delivery.queued is not None:
        # Durably queued is the caller's success: the queue owns the message now.
        app.out.info(
            f"mailcli: queued: {delivery.queued.id}, {delivery.reason}; "
            "`mailcli queue run` will retry"
        )
    return delivery.exit_status


@click.group()
def queue() -> None:
    """The sendmail-mode queue: messages waiting for a retry."""


@queue.command("list")
@click.pass_obj
def list_queue(app: AppContext) -> None:
    """Show waiting messages: id, age, attempts, recipients, last error."""
    from dataclasses import asdict

    spool = _spool()
    entries, damaged = spool.entries(), spool.damaged()
    now = time.time()
    rows = [
        [e.id, _age(now - e.created), e.attempts, ",".join(e.recipients), e.last_error]
        for e in entries
    ]
    rows += [[d.id, "-", "-", "-", d.reason] for d in damaged]
    if not entries and not damaged and not app.json:
        app.out.info("the queue is empty")
    app.out.table(
        ["id", "age", "attempts", "recipients", "last error"],
        rows,
        document={"queue": [asdict(e) for e in entries], "damaged": [asdict(d) for d in damaged]},
    )


@queue.command("run")
@log_option
@click.pass_obj
def run(app: AppContext, log: str | None) -> int:
    """Retry every waiting message (for cron). Exit 0 when all went, 75 when some wait,
    69 when some failed, 67 when some recipients were refused, 74 on a full disk."""
    from mailcli.sendmail.deliver import run_queue

    before = trail.queue_before(app, log, _spool())
    report = run_queue(_spool(), _relay_factory(app))
    if before is not None:
        trail.queue_ran(app, log, before, report)
    outcomes = report.outcomes
    rows = [[o.entry_id, o.status, o.detail] for o in outcomes]
    dsn = _dsn_by_entry(app, report)
    document = {
        "outcomes": [
            {
                "id": o.entry_id,
                "status": o.status,
                "detail": o.detail,
                "relay": o.relay.account if o.relay else None,
                "dsn": dsn.get(o.entry_id),
            }
            for o in outcomes
        ]
    }
    failed_directory = _spool().failed_directory
    problems = {
        "failed": "refused permanently, moved to",
        "refused": "recipients refused permanently, kept in",
        "damaged": "quarantined in",
    }
    for outcome in outcomes:  # diagnostics: on stderr even with -q
        if outcome.status in problems:
            app.out.error(
                f"{outcome.entry_id} {problems[outcome.status]} {failed_directory}: "
                f"{outcome.detail}"
            )
    if not app.quiet or app.json:
        app.out.table(["id", "status", "detail"], rows, document=document)
    if report.error is not None:  # its one line on stderr, and its status
        raise report.error
    return report.exit_status


def _dsn_by_entry(app: AppContext, report: QueueReport) -> dict[str, str | None]:
    """Each sent entry's SendResult.dsn; one warning per entry the server took without."""
    dsn = {entry_id: result.dsn for entry_id, result in report.results.items()}
    for entry_id, said in dsn.items():
        if said == "not offered":
            app.out.warning(f"{entry_id}: the server does not offer DSN: sent without them")
    return dsn


@queue.command("remove")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.pass_obj
def remove(app: AppContext, ids: tuple[str, ...]) -> None:
    """Delete waiting messages without sending them (75 while a `queue run` holds them)."""
    spool = _spool()
    with spool.lock():  # a run may be sending this very entry
        for entry_id in ids:
            spool.remove(entry_id)
            app.out.info(f"removed {entry_id}")


def _chosen_account(app: AppContext, parsed: SendmailArgs, raw: bytes) -> Account | None:
    """-a, else the account whose from matches the sender, else the default
    (`sendmail.choice`); the credentials and a queued entry follow it by name."""
    from mailcli.sendmail.choice import choose_account, sender_to_match

    named = parsed.account or app.account_name
    sender = None if named else sender_to_match(parsed, raw)
    chosen = choose_account(app.config, named, sender).account
    app.account_name = chosen.name if chosen is not None else None
    return chosen


def _spool() -> Spool:
    from mailcli.sendmail.spool import Spool, default_queue_dir

    return Spool(default_queue_dir())


def _relay_factory(app: AppContext) -> RelayFactory:
    """account name -> its relays: its server (file and environment), then its fallbacks'."""
    from functools import partial

    from mailcli.cli.relays import account_relays

    return partial(account_relays, app)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
