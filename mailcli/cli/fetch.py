"""`mailcli fetch`: new POP3 mail into a Maildir, an mbox or an MDA (see mailcli/fetch/run.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mailcli.cli import trail
from mailcli.cli.context import AppContext
from mailcli.cli.options import connection_options
from mailcli.cli.trail import log_option
from mailcli.endpoint import ConnectionOptions

if TYPE_CHECKING:
    from mailcli.fetch.filter import HeaderFilter
    from mailcli.fetch.run import FetchSummary

DEFAULT_DESTINATION = "maildir:~/Maildir"


@click.command()
@click.option(
    "--to",
    "destination",
    metavar="DEST",
    help="maildir:PATH (default ~/Maildir), mbox:PATH, mda:'COMMAND', lmtp:/SOCKET or "
    "lmtp:HOST:PORT.",
)
@click.option(
    "--lmtp-rcpt",
    metavar="ADDR",
    help="The LMTP recipient (RCPT TO) for --to lmtp:; default the account's user.",
)
@click.option(
    "--keep/--delete",
    default=None,
    help="Keep messages on the server (default) or delete what is safely fetched.",
)
@click.option(
    "--delete-after",
    type=click.IntRange(min=0),
    metavar="DAYS",
    help="Delete a message on the server once it was stored DAYS days ago (0: at once).",
)
@click.option(
    "--delete-larger-than",
    type=click.IntRange(min=0),
    metavar="BYTES",
    help="Delete larger new messages on the server without downloading them (even with --keep).",
)
@click.option(
    "--mark-seen",
    is_flag=True,
    help="Record every message on the server as fetched, downloading and deleting none.",
)
@click.option("--all", "everything", is_flag=True, help="Fetch every message, not only new ones.")
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    metavar="BYTES",
    help="Skip larger messages (fetched later if the limit is raised).",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Fetch at most N.")
@click.option(
    "--filter",
    "filter_command",
    metavar="COMMAND",
    help="Judge each new message's header first (on stdin; %F sender, %S size): exit 0 "
    "fetch, 1 delete unread, 2 leave it, other: stop, 75.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be fetched; change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="A one-line summary even when piped.")
@click.option(
    "--received-header/--no-received-header",
    default=None,
    help="Put a Received line (server, account, time) before each message; off by "
    "default, so that mail arrives byte-identical.",
)
@click.option(
    "-a",
    "--account",
    "accounts",
    metavar="NAME",
    multiple=True,
    help="Account from the config file; repeat it to fetch several in one run.",
)
@click.option("--all-accounts", is_flag=True, help="Fetch every account of the config.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    metavar="N",
    help="Accounts fetched at once with --all-accounts or several -a.",
)
@log_option
@connection_options
@click.pass_obj
def fetch(
    app: AppContext,
    /,
    connection: ConnectionOptions,
    destination: str | None,
    keep: bool | None,
    everything: bool,
    max_size: int | None,
    limit: int | None,
    dry_run: bool,
    verbose: bool,
    log: str | None,
    lmtp_rcpt: str | None,
    received_header: bool | None,
    filter_command: str | None,
    delete_after: int | None,
    delete_larger_than: int | None,
    mark_seen: bool,
    accounts: tuple[str, ...],
    all_accounts: bool,
    jobs: int,
) -> int | None:
    """Download new mail; never loses or duplicates a message, even after kill -9.

    \b
    Environment:
      MAILCLI_FETCH_BATCH=N  messages per batch for Maildir and mbox (default 256):
                             each batch is synced and recorded once; a crash refetches
                             at most the batch in flight.
    """
    from mailcli.fetch.run import FetchOptions, Progress, fetch_mail
    from mailcli.fetch.state import default_state_dir

    if all_accounts or len(accounts) > 1:  # each in a process of its own: cli/fetch_accounts
        from mailcli.cli.fetch_accounts import fetch_accounts

        return fetch_accounts(
            app, accounts, all_accounts=all_accounts, jobs=jobs, host=connection.host
        )
    app.account_name = accounts[0] if accounts else app.account_name
    account = app.account
    endpoint = app.endpoint("pop3", connection)
    spec = destination or (account.fetch.to if account else None) or DEFAULT_DESTINATION
    retention = _retention(app, keep, delete_after, delete_larger_than, mark_seen=mark_seen)
    rcpt = lmtp_rcpt or (account.fetch.lmtp_rcpt if account else None)
    header_filter = _header_filter(
        filter_command or (account.fetch.filter if account else None), endpoint.timeout
    )
    if received_header is None:
        received_header = bool(account and account.fetch.received_header)
    options = FetchOptions(
        **retention,
        everything=everything,
        max_size=max_size,
        limit=limit,
        dry_run=dry_run,
        lmtp_rcpt=rcpt,
        received_header=received_header,
        header_filter=header_filter,
    )
    display = app.out.progress()
    try:
        with trail.fetching(app, log, endpoint, dry_run=dry_run) as logged:
            summary, where = fetch_mail(
                endpoint,
                spec,
                options,
                credential=app.credential(endpoint),
                transcript=app.transcript(),
                progress=Progress(display.start, display.advance),
                state_dir=default_state_dir(),
            )
            logged(summary)
    finally:
        display.close()
    _report(app, summary, where, verbose=verbose, dry_run=dry_run)
    for refusal in summary.refusals():  # each left on the server; the run went on
        app.out.error(refusal)
    if summary.filter_failure:
        app.out.error(summary.filter_failure)
    return summary.exit_status or None  # the same status the trail's line records


def _header_filter(command: str | None, timeout: float) -> HeaderFilter | None:
    """The checked filter (78 before connecting when its program is missing); its
    deadline per message is the network timeout."""
    if command is None:
        return None
    from mailcli.fetch.filter import HeaderFilter

    return HeaderFilter.checked(command, timeout=timeout)


def _retention(
    app: AppContext, keep: bool | None, days: int | None, larger: int | None, *, mark_seen: bool
) -> dict[str, Any]:
    """What this run deletes (`fetch.retention`): the options, else the account's keys;
    an explicit --keep or --delete wins over the delete_after key."""
    from mailcli.config import FetchSettings
    from mailcli.errors import UsageError

    settings = app.account.fetch if app.account else FetchSettings()
    if keep is not None and days is not None:
        raise UsageError("--delete-after says when to delete: give it without --keep or --delete")
    days = settings.delete_after if days is None and keep is None else days
    delete = (not keep) if keep is not None else settings.delete
    if days is not None:  # 0 is --delete
        delete, days = days == 0, days or None
    larger = settings.delete_larger_than if larger is None else larger
    if mark_seen and (delete or days is not None or larger is not None):
        app.out.warning("--mark-seen never deletes: nothing is deleted in this run")
        delete, days, larger = False, None, None
    return {
        "delete": delete,
        "delete_after": days,
        "delete_larger_than": larger,
        "mark_seen": mark_seen,
    }


def _report_retention(app: AppContext, summary: FetchSummary, *, dry_run: bool) -> None:
    """Each message deleted unread, and what --mark-seen recorded: said even when piped."""
    for unread in summary.deleted_unread:
        app.out.info(
            f"{'would delete' if dry_run else 'deleted'} message {unread.number} "
            f"({unread.size} octets, over --delete-larger-than) without downloading; "
            f"uid {unread.uid}"
        )
    if summary.marked is not None and not app.json:
        app.out.info(f"{'would mark' if dry_run else 'marked'} {summary.marked} message(s) as seen")


def _report(
    app: AppContext, summary: FetchSummary, where: str, *, verbose: bool, dry_run: bool
) -> None:
    if summary.no_uidl:
        app.out.warning(
            "the server has no UIDL: every message is fetched on each run (use --delete)"
        )
    for warning in summary.warnings():
        app.out.warning(warning)
    for skipped in summary.skipped:
        app.out.info(
            f"skipped message {skipped.number} ({skipped.size} octets, over "
            f"--max-size); uid {skipped.uid}"
        )
    if summary.note:  # nothing new because this destination is not the last one
        app.out.info(summary.note)
    _report_retention(app, summary, dry_run=dry_run)
    if summary.marked is not None and not app.json:
        return
    if app.json:
        planned = {"would_fetch": summary.planned, "would_delete": summary.expiring}
        app.out.json({**summary.as_json(), **(planned if dry_run else {})})
        return
    if dry_run:
        expiring = f"; would delete {summary.expiring} fetched earlier" if summary.expiring else ""
        app.out.info(f"would fetch {summary.planned} message(s) into {where}{expiring}")
        return
    line = (
        f"fetched {summary.fetched} message(s), {summary.octets} bytes, into {where}; "
        f"deleted {summary.deleted}; {summary.seconds:.2f} s"
    )
    if verbose or app.terminal.stderr_tty:
        app.out.info(line if summary.fetched or summary.deleted else "no new mail")
