"""`--log FILE|syslog` and the commands' hooks into the trail (mailcli/trail).

Where a run's trail goes: `--log`, else the account's `log` key, else the top-level
`log`, else nowhere (and then mailcli.trail is never imported). The hooks hand the
results, or the error a run ended with, to `mailcli.trail.records`; a trail that cannot
be written is one warning on stderr and changes nothing else: the mail is sent (or
queued, or fetched) and the exit status is the run's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import click

from mailcli.errors import MailcliError, Stopped

if TYPE_CHECKING:
    from mailcli.cli.context import AppContext
    from mailcli.config import Account
    from mailcli.endpoint import Endpoint
    from mailcli.fetch.run import FetchSummary
    from mailcli.sendmail.deliver import Delivery, QueueReport
    from mailcli.sendmail.spool import Spool
    from mailcli.smtp.envelope import Outgoing
    from mailcli.smtp.failover import RelayUsed
    from mailcli.smtp.result import SendResult
    from mailcli.trail.records import Failure, Record, Waiting
    from mailcli.trail.sink import Trail


class Sent(Protocol):
    """send's hook: its result, and the relay that took the message when one did."""

    def __call__(self, result: SendResult, relay: RelayUsed | None = None) -> None: ...


log_option = click.option(
    "--log",
    metavar="FILE|syslog",
    help="Append one line per message (fetch: per run) to FILE, or to syslog (mail).",
)


def log_target(app: AppContext, option: str | None, account: Account | None) -> str | None:
    """--log, else the account's `log`, else the top-level one, else None."""
    if option:
        return option
    if account is None and _no_config_file(app):
        return None  # nothing to read, and mailcli.config stays unimported
    return app.config.log_target(account)


@contextmanager
def sending(
    app: AppContext, option: str | None, endpoint: Endpoint, outgoing: Outgoing
) -> Iterator[Sent]:
    """Around `send`'s submission: the caller passes the result (and the relay that took
    it); an error is logged too."""
    target = log_target(app, option, app.account)
    if target is None:
        yield lambda result, relay=None: None
        return
    from mailcli.trail import records

    def sent(result: SendResult, relay: RelayUsed | None = None) -> None:
        _write(app, target, records.sent("send", endpoint, outgoing, result, relay))

    try:
        yield sent
    except (MailcliError, Stopped) as exc:
        _write(app, target, records.sent("send", endpoint, outgoing, _failure(exc)))
        raise


@contextmanager
def delivering(
    app: AppContext, account: Account | None, outgoing: Outgoing
) -> Iterator[Callable[[Delivery], None]]:
    """Around sendmail's delivery by `account` (its log comes from the configuration)."""
    target = log_target(app, None, account)
    if target is None:
        yield lambda delivery: None
        return
    from mailcli.trail import records

    name = account.name if account else None
    server = _server(account)
    try:
        yield lambda done: _write(app, target, records.delivered(name, server, outgoing, done))
    except (MailcliError, Stopped) as exc:
        _write(app, target, records.delivered(name, server, outgoing, _failure(exc)))
        raise


def queue_before(app: AppContext, option: str | None, spool: Spool) -> dict[str, Waiting] | None:
    """The queue as a run finds it, when some trail is configured; else None."""
    if not option:
        if _no_config_file(app):
            return None
        config = app.config
        if not config.log and not any(account.log for account in config.accounts.values()):
            return None
    from mailcli.trail import records

    return records.waiting(spool)


def queue_ran(
    app: AppContext, option: str | None, before: dict[str, Waiting], report: QueueReport
) -> None:
    """One line per entry the run reached, each to its account's trail."""
    from mailcli.trail import records
    from mailcli.trail.sink import Trail

    trail = Trail()  # one for the run: each target's failure is reported once
    for name, record in records.queue_run(
        report, before, lambda name: _server(_account(app, name))
    ):
        target = log_target(app, option, _account(app, name))
        if target is not None:
            _write(app, target, record, trail)


def _account(app: AppContext, name: str | None) -> Account | None:
    """A queue entry's account (None: the default); one since removed: None."""
    try:
        return app.config.select_account(name)
    except MailcliError:
        return None


@contextmanager
def fetching(
    app: AppContext, option: str | None, endpoint: Endpoint, *, dry_run: bool
) -> Iterator[Callable[[FetchSummary], None]]:
    """Around one fetch run; a dry run, which writes nothing anywhere, is not logged."""
    target = None if dry_run else log_target(app, option, app.account)
    if target is None:
        yield lambda summary: None
        return
    from mailcli.trail import records

    try:
        yield lambda summary: _write(app, target, records.fetched(endpoint, summary))
    except (MailcliError, Stopped) as exc:
        _write(app, target, records.fetched(endpoint, _failure(exc)))
        raise


def _failure(exc: MailcliError | Stopped) -> Failure:
    from mailcli.trail.records import Failure

    if isinstance(exc, Stopped):
        return Failure(f"stopped by signal {exc.signum}", exc.exit_status)
    return Failure(exc.message, exc.exit_status)


def _server(account: Account | None) -> str | None:
    """The SMTP server an account's messages go to, HOST:PORT; None when unresolvable."""
    from mailcli.endpoint import ConnectionOptions, resolve_endpoint

    try:
        endpoint = resolve_endpoint("smtp", account, ConnectionOptions())
    except MailcliError:
        return None
    return endpoint.where


def _write(app: AppContext, target: str, record: Record, trail: Trail | None = None) -> None:
    if trail is None:
        from mailcli.trail.sink import Trail

        trail = Trail()
    problem = trail.write(target, record.line, success=record.success)
    if problem is not None:
        app.out.warning(f"{problem}; the run goes on")


def _no_config_file(app: AppContext) -> bool:
    """True only when no --config is given and the default file is certainly absent."""
    if app.config_path is not None:
        return False
    import os

    from mailcli.cli.context import default_config_file

    try:
        os.stat(default_config_file())
    except FileNotFoundError:
        return True
    except OSError:
        return False  # there may be one: load_config says what is wrong
    return False
