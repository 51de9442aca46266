"""`mailcli account list|show|add|remove|which|import`: the config file's accounts; no secret."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailcli.cli.context import AppContext
from mailcli.config import SECURITY_MODES, Account, FetchSettings
from mailcli.endpoint import SecurityMode, ServerSettings

if TYPE_CHECKING:
    from mailcli.importer.run import Format, ImportOutcome


@click.group()
def account() -> None:
    """Manage the accounts in the config file."""


@account.command("list")
@click.pass_obj
def list_accounts(app: AppContext) -> None:
    """List the configured accounts."""
    config = app.config
    default = config.select_account(None)  # the explicit default, else the only account
    rows = [
        [name, acc is default, acc.from_addr, acc.smtp.host, acc.pop3.host]
        for name, acc in config.accounts.items()
    ]
    document = {
        "config": str(config.path),
        "accounts": [_account_document(a) for a in config.accounts.values()],
    }
    if not rows and not app.json:
        app.out.info(f"no accounts in {config.path}; add one with `mailcli account add`")
    app.out.table(["account", "default", "from", "smtp", "pop3"], rows, document=document)


@account.command("show")
@click.argument("name", required=False)
@click.pass_obj
def show_account(app: AppContext, name: str | None) -> None:
    """Show one account's settings (the default account without NAME)."""
    selected = app.config.select_account(name or app.account_name)
    if selected is None:
        raise click.UsageError("no default account; name one")
    document = _account_document(selected)
    pairs = [(key, value) for key, value in _flatten(document) if value is not None]
    app.out.fields(pairs, document=document)


@account.command("add")
@click.argument("name")
@click.option("--from", "from_addr", help="From header, e.g. 'Ann <ann@example.org>'.")
@click.option("--user", help="Login name for both servers.")
@click.option("--domain", help="Domain that qualifies bare names in sendmail mode.")
@click.option("--password-command", help="Command that prints the password.")
@click.option("--smtp-host")
@click.option("--smtp-port", type=click.IntRange(1, 65535))
@click.option("--smtp-security", type=click.Choice(SECURITY_MODES))
@click.option("--pop3-host")
@click.option("--pop3-port", type=click.IntRange(1, 65535))
@click.option("--pop3-security", type=click.Choice(SECURITY_MODES))
@click.option("--fetch-to", metavar="DEST", help="maildir:PATH, mbox:PATH or mda:'CMD'.")
@click.option("--default", "make_default", is_flag=True, help="Make it the default account.")
@click.pass_obj
def add(
    app: AppContext,
    /,
    name: str,
    make_default: bool,
    from_addr: str | None,
    user: str | None,
    domain: str | None,
    password_command: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_security: SecurityMode | None,
    pop3_host: str | None,
    pop3_port: int | None,
    pop3_security: SecurityMode | None,
    fetch_to: str | None,
) -> None:
    """Add an account to the config file (created when missing)."""
    from mailcli.config import add_account

    new = Account(  # the typed record the config consumes, built here once
        name=name,
        from_addr=from_addr,
        user=user,
        domain=domain,
        password_command=password_command,
        smtp=ServerSettings(host=smtp_host, port=smtp_port, security=smtp_security),
        pop3=ServerSettings(host=pop3_host, port=pop3_port, security=pop3_security),
        fetch=FetchSettings(to=fetch_to),
    )
    path = add_account(app.config, new, make_default=make_default)
    app.out.info(f"added account {name!r} to {path}")


@account.command("remove")
@click.argument("name")
@click.pass_obj
def remove(app: AppContext, name: str) -> None:
    """Remove an account from the config file (its keyring entries stay)."""
    from mailcli.config import remove_account

    path = remove_account(app.config, name)
    app.out.info(f"removed account {name!r} from {path}")


@account.command("which")
@click.argument("address")
@click.pass_obj
def which(app: AppContext, address: str) -> int:
    """Say which account `sendmail -f ADDRESS` would send with, and why: named with -a,
    an exact or pattern match of its from, or the default. Exit 67 when none would."""
    from email.utils import parseaddr

    from mailcli.errors import ExitStatus, UsageError
    from mailcli.sendmail.choice import choose_account

    sender = parseaddr(address)[1]
    if "@" not in sender:
        raise UsageError(f"{address!r} is not an address (USER@DOMAIN)")
    choice = choose_account(app.config, app.account_name, sender)
    name = choice.account.name if choice.account is not None else None
    document = {"address": sender, "account": name, "how": choice.kind, "why": choice.why}
    app.out.fields([(key, value) for key, value in document.items()], document=document)
    return ExitStatus.NOUSER if name is None else ExitStatus.OK


@account.command("import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--from",
    "forced",
    type=click.Choice(["msmtp", "mpop", "getmail", "fetchmail"]),
    help="The files' format (default: told from each file).",
)
@click.option(
    "--dry-run", is_flag=True, help="Print the config that would be written; write nothing."
)
@click.option(
    "--with-passwords",
    is_flag=True,
    help="Store clear passwords, and those msmtp and mpop keep in the keyring, in mailcli's.",
)
@click.option(
    "--with-state", is_flag=True, help="Carry the tools' seen-UID files over as fetch state."
)
@click.option("--replace", is_flag=True, help="Overwrite accounts and aliases of the same name.")
@click.pass_obj
def import_accounts(
    app: AppContext,
    /,
    files: tuple[Path, ...],
    forced: Format | None,
    dry_run: bool,
    with_passwords: bool,
    with_state: bool,
    replace: bool,
) -> None:
    """Import accounts from msmtp, mpop, getmail6 and fetchmail.

    FILES default to ~/.msmtprc, ~/.mpoprc, their $XDG_CONFIG_HOME/msmtp|mpop/config,
    getmailrc* in ~/.getmail and $XDG_CONFIG_HOME/getmail, and ~/.fetchmailrc. Every
    setting is mapped or listed on stderr with its file, line and why; a clear password
    never goes into the config file. The entries of msmtp's aliases file go into
    [aliases], expanded as msmtp expands them."""
    from mailcli.fetch.state import default_state_dir
    from mailcli.importer.run import ImportRequest, default_files
    from mailcli.importer.run import import_accounts as run_import

    request = ImportRequest(
        list(files) or default_files(), forced, dry_run, with_passwords, with_state, replace
    )
    outcome = run_import(app.config, request, default_state_dir())
    _report_import(app, outcome)


def _report_import(app: AppContext, outcome: ImportOutcome) -> None:
    plan = outcome.plan
    for item in plan.unmapped:
        app.out.warning(f"not imported: {item.describe()}")
    names = ", ".join(plan.accounts) or "none"
    left = len(plan.passwords) - len(outcome.passwords_stored)
    document = {
        "config": str(app.config.path),
        "written": outcome.written,
        "accounts": list(plan.accounts),
        "aliases": plan.aliases_set,
        "unmapped": [vars(item) for item in plan.unmapped],
        "passwords_stored": outcome.passwords_stored,
        "passwords_left": left,
        "state": [{"account": a, "uids": n} for a, n in outcome.states],
        "toml": None if outcome.written else outcome.text,  # what a real run would write
    }
    if not outcome.written:
        app.out.text(outcome.text.rstrip("\n"), document=document)
    elif app.json:
        app.out.json(document)
    app.out.info(f"{'imported' if outcome.written else 'would import'} accounts: {names}")
    if plan.aliases_set:
        verb = "imported" if outcome.written else "would import"
        app.out.info(f"{verb} aliases: {', '.join(plan.aliases_set)}")
    if left:
        app.out.info(f"{left} clear passwords left behind: --with-passwords stores them")
    for key in outcome.passwords_stored:
        app.out.info(f"stored the password for {key} in the keyring")
    for name, count in outcome.states:
        verb = "recorded" if outcome.written else "would record at most"
        app.out.info(f"{name}: {verb} {count} UIDs mpop fetched as fetched")


# Settings whose value is itself a secret: shown as "(set)", never as the value.
SECRET_SETTINGS = {"oauth2": ("client_secret",)}


def _account_document(acc: Account) -> dict[str, Any]:
    document = asdict(acc)
    document["from"] = document.pop("from_addr")
    # asdict keeps a NamedTuple a tuple (a bare list in JSON): the server and oauth2
    # tables as tables.
    document["smtp"], document["pop3"] = acc.smtp._asdict(), acc.pop3._asdict()
    document["oauth2"] = acc.oauth2._asdict() if acc.oauth2 is not None else None
    for table, keys in SECRET_SETTINGS.items():
        for key in keys:
            if document[table] is not None and document[table][key] is not None:
                document[table][key] = "(set)"
    for server in (document["smtp"], document["pop3"]):
        if server["proxy"]:  # a URL that may hold the proxy's password
            from mailcli.transport.socks import shown_proxy_url

            server["proxy"] = shown_proxy_url(server["proxy"])
    return document


def _flatten(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            pairs.extend(_flatten(value, f"{prefix}{key}."))
        else:
            pairs.append((prefix + key, value))
    return pairs
