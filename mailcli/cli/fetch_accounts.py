"""`mailcli fetch --all-accounts` / `fetch -a A -a B`: several accounts in one run.

Each account is the ordinary single-account `fetch` (same options, its own lock, state
and trail), run in a child process by `fetch.accounts`, which also holds the rule for
the one exit status. Here: choosing the accounts (an unknown one is 78 before any
connection; `--all-accounts` with `-a` is 64), skipping those without a POP3 server
with a note, prefixing each child's stderr lines with its account (`mailcli: work:
error: ...`; `--trace` lines as `work: C: ...`), and one summary row per account on
stdout: account, fetched, skipped, deleted, bytes, status (`ok`, `skipped`, or the
sysexits name of its failure, e.g. `noperm`); `--json` gives a list of objects with
each account's exit status and its summary.

As for every global option, `-a` after the command name wins over `-a` before it
(`mailcli -a x fetch -a y -a z` fetches y and z).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from mailcli.cli.context import AppContext
from mailcli.errors import ConfigError, ExitStatus, UsageError

if TYPE_CHECKING:
    from mailcli.fetch.accounts import AccountRun

COLUMNS = ["account", "fetched", "skipped", "deleted", "bytes", "status"]


def fetch_accounts(
    app: AppContext, names: tuple[str, ...], *, all_accounts: bool, jobs: int, host: str | None
) -> int:
    """The run of several accounts; its exit status (`fetch.accounts.most_severe`)."""
    from mailcli.fetch.accounts import most_severe, run_accounts

    ctx = click.get_current_context()
    chosen = _chosen(app, ctx, names, all_accounts=all_accounts)
    runnable = [name for name in chosen if _has_pop3_server(app, name, host)]
    for name in chosen:
        if name not in runnable:
            app.out.info(f"mailcli: {name}: note: no POP3 server in its config: skipped")
    params = {**ctx.params, "accounts": (), "all_accounts": False}
    errors: dict[str, str] = {}

    def work(name: str) -> int:
        return _run_one(app, ctx, params, name)

    def relay(name: str, line: str) -> None:
        if line.startswith("mailcli: error: "):
            errors.setdefault(name, line.removeprefix("mailcli: error: "))
        shown = (
            f"mailcli: {name}: {line[9:]}" if line.startswith("mailcli: ") else f"{name}: {line}"
        )
        app.terminal.stderr.write(shown + "\n")
        app.terminal.stderr.flush()

    runs = {run.name: run for run in run_accounts(runnable, jobs, work, relay)}
    _summary_table(app, chosen, runs, errors)
    return most_severe(run.status for run in runs.values())


def _summary_table(
    app: AppContext, chosen: list[str], runs: dict[str, AccountRun], errors: dict[str, str]
) -> None:
    """One row per account, in the order chosen; under --json a list of objects."""
    rows: list[list[Any]] = []
    documents: list[dict[str, Any]] = []
    for name in chosen:
        run = runs.get(name)
        summary = (run.document if run else None) or {}
        status = _status_word(run.status, run.signal) if run else "skipped"
        rows.append([name, *_counts(summary), status])
        document = {"account": name, "status": status, "exit_status": run.status if run else 0}
        if name in errors:
            document["error"] = errors[name]
        documents.append({**document, **summary})
    app.out.table(COLUMNS, rows, document=documents)


def _chosen(
    app: AppContext, ctx: click.Context, names: tuple[str, ...], *, all_accounts: bool
) -> list[str]:
    """The accounts to fetch, in order, each once: 64 for --all-accounts with -a, 78 for
    an account the config does not have, or none at all."""
    before = ctx.parent.get_parameter_source("account") if ctx.parent else None
    if all_accounts and (names or before == click.core.ParameterSource.COMMANDLINE):
        raise UsageError("--all-accounts and -a exclude each other: give one of them")
    config = app.config
    chosen = list(config.accounts) if all_accounts else list(dict.fromkeys(names))
    for name in chosen:
        config.select_account(name)  # 78 naming the accounts it knows
    if not chosen:
        raise ConfigError(f"{config.path}: no accounts to fetch (no [accounts.NAME] table)")
    return chosen


def _has_pop3_server(app: AppContext, name: str, host: str | None) -> bool:
    account = app.config.accounts[name]
    return bool(host or os.environ.get("MAILCLI_POP3_HOST") or account.pop3.host)


def _run_one(app: AppContext, ctx: click.Context, params: dict[str, Any], name: str) -> int:
    """In the child: the single-account fetch of `name`, its summary as JSON on the
    child's stdout, its diagnostics on its stderr; its exit status."""
    from mailcli.cli.main import failed

    child = AppContext()
    for attribute in ("config_path", "trace", "trace_data", "trace_time", "quiet", "debug"):
        setattr(child, attribute, getattr(app, attribute))
    child.account_name = name
    child.json = True
    ctx.obj = child
    assert ctx.command.callback is not None
    try:
        result = ctx.command.callback(**params)
    except Exception as exc:
        return failed(child, exc)
    return int(result) if isinstance(result, int) else 0


def _counts(summary: dict[str, Any]) -> list[int]:
    """fetched (or, in a dry run, would fetch), skipped, deleted, bytes."""
    fetched = summary.get("would_fetch", summary.get("fetched", 0))
    skipped = summary.get("skipped", 0) + summary.get("filter_skipped", 0)
    return [fetched, skipped, summary.get("deleted", 0), summary.get("bytes", 0)]


def _status_word(status: int, signum: int | None) -> str:
    if signum is not None:
        return f"killed-by-signal-{signum}"
    if status == ExitStatus.OK:
        return "ok"
    try:
        return ExitStatus(status).name.lower()
    except ValueError:
        return str(status)
