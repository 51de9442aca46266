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
    from mailcli.endpoint import Endpoint
    from mailcli.fetch.request import ResolvedFetch
    from mailcli.fetch.run import FetchSummary


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
    verbose: bool,
    log: str | None,
    accounts: tuple[str, ...],
    all_accounts: bool,
    jobs: int,
    **given: Any,
) -> int | None:
    """Download new mail; never loses or duplicates a message, even after kill -9.

    \b
    Environment:
      MAILCLI_FETCH_BATCH=N  messages per batch for Maildir and mbox (default 256):
                             each batch is synced and recorded once; a crash refetches
                             at most the batch in flight.
    """
    from mailcli.config import FetchSettings
    from mailcli.fetch.request import FetchRequest, resolve

    if all_accounts or len(accounts) > 1:  # each in a process of its own: cli/fetch_accounts
        from mailcli.cli.fetch_accounts import fetch_accounts

        return fetch_accounts(
            app, accounts, all_accounts=all_accounts, jobs=jobs, host=connection.host
        )
    app.account_name = accounts[0] if accounts else app.account_name
    request = FetchRequest(**given)  # the options named by their click parameters
    endpoint = app.endpoint("pop3", connection)
    settings = app.account.fetch if app.account else FetchSettings()
    resolved = resolve(request, settings, endpoint.timeout)
    for warning in resolved.warnings:
        app.out.warning(warning)
    summary, where = _run(app, endpoint, resolved, log)
    _report(app, summary, where, verbose=verbose, dry_run=request.dry_run)
    for refusal in summary.refusals():  # each left on the server; the run went on
        app.out.error(refusal)
    if summary.filter_failure:
        app.out.error(summary.filter_failure)
    return summary.exit_status or None  # the same status the trail's line records


def _run(
    app: AppContext, endpoint: Endpoint, resolved: ResolvedFetch, log: str | None
) -> tuple[FetchSummary, str]:
    """The fetch itself, with its progress display and its line in the trail."""
    from mailcli.fetch.run import Progress, fetch_mail
    from mailcli.fetch.state import default_state_dir

    display = app.out.progress()
    try:
        dry_run = resolved.options.dry_run
        with trail.fetching(app, log, endpoint, dry_run=dry_run) as logged:
            summary, where = fetch_mail(
                endpoint,
                resolved.destination,
                resolved.options,
                credential=app.credential(endpoint),
                transcript=app.transcript(),
                progress=Progress(display.start, display.advance),
                state_dir=default_state_dir(),
            )
            logged(summary)
    finally:
        display.close()
    return summary, where


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
    for unread in summary.deleted_unread:  # said even when piped, as --mark-seen's count
        app.out.info(
            f"{'would delete' if dry_run else 'deleted'} message {unread.number} "
            f"({unread.size} octets, over --delete-larger-than) without downloading; "
            f"uid {unread.uid}"
        )
    if summary.marked is not None and not app.json:  # --mark-seen: said even when piped
        app.out.info(f"{'would mark' if dry_run else 'marked'} {summary.marked} message(s) as seen")
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
