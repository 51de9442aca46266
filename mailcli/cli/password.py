"""`mailcli password set|delete|where`: secrets in the OS keyring, and where one comes from."""

from __future__ import annotations

import click

from mailcli.cli.context import AppContext
from mailcli.endpoint import (
    PROTOCOLS,
    ConnectionOptions,
    Endpoint,
    resolve_endpoint,
    resolve_password_command,
)
from mailcli.errors import ConfigError, CredentialsError, UsageError

_KEY_HELP = "USER@HOST; default: the account's SMTP and POP3 logins."


def _key_options(function: click.decorators.FC) -> click.decorators.FC:
    function = click.option("--user", help="Login name (instead of the account's).")(function)
    function = click.option("--host", help="Server host (instead of the account's).")(function)
    return click.argument("key", required=False, metavar="[USER@HOST]")(function)


@click.group()
def password() -> None:
    """Store, remove or locate the password for a login (service `mailcli` in the keyring)."""


@password.command("set", help=f"Store a password in the OS keyring. KEY: {_KEY_HELP}")
@_key_options
@click.pass_obj
def set_password(app: AppContext, key: str | None, host: str | None, user: str | None) -> None:
    from mailcli.auth.credentials import KeyringUnavailable, keyring_set

    keys = [key] if key else [e.credential_key for e in _endpoints(app, host, user)]
    secret = _read_new_password(app, keys)
    for entry in keys:
        try:
            backend = keyring_set(entry, secret)
        except KeyringUnavailable as exc:
            raise CredentialsError(
                f"cannot store the password for {entry}: {exc}",
                hint="use MAILCLI_PASSWORD or password_command instead",
            ) from None
        app.out.info(f"stored the password for {entry} in the keyring ({backend})")


@password.command("delete", help=f"Remove a password from the keyring. KEY: {_KEY_HELP}")
@_key_options
@click.pass_obj
def delete_password(app: AppContext, key: str | None, host: str | None, user: str | None) -> None:
    from mailcli.auth.credentials import KeyringUnavailable, keyring_delete

    keys = [key] if key else [e.credential_key for e in _endpoints(app, host, user)]
    for entry in keys:
        try:
            found = keyring_delete(entry)
        except KeyringUnavailable as exc:
            raise CredentialsError(f"cannot reach the keyring: {exc}") from None
        app.out.info(f"{'deleted' if found else 'no entry for'} {entry}")


@password.command("where", help=f"Say which source would supply the password. KEY: {_KEY_HELP}")
@_key_options
@click.pass_obj
def where(app: AppContext, key: str | None, host: str | None, user: str | None) -> None:
    from mailcli.auth.credentials import answering_source, describe_sources

    if not key and app.account is not None and app.account.oauth2 is not None:
        return _where_oauth(app, [e.credential_key for e in _endpoints(app, host, user)])
    if key:  # what a login as USER@HOST through this account would use
        targets = [(key, resolve_password_command(app.account))]
    else:
        targets = [(e.credential_key, e.password_command) for e in _endpoints(app, host, user)]
    documents, rows = [], []
    for entry, command in targets:
        sources = describe_sources(
            entry, password_command=command, interactive=app.terminal.stdin_tty
        )
        answer = answering_source(sources)
        documents.append(
            {"key": entry, "answer": answer, "sources": [s._asdict() for s in sources]}
        )
        for position, source in enumerate(sources, 1):
            chosen = "<- used" if source.name == answer else ""
            rows.append([entry, position, source.name, source.available, source.detail, chosen])
    app.out.table(
        ["login", "step", "source", "available", "why", ""], rows, document={"logins": documents}
    )


def _where_oauth(app: AppContext, logins: list[str]) -> None:
    """An account with an oauth2 table logs in with its OAuth2 tokens, not a password."""
    from mailcli.auth.oauth.access import OAuthBearer

    account = app.account
    assert account is not None and account.oauth2 is not None  # checked by the caller
    bearer = OAuthBearer(account.name, account.oauth2)
    try:
        available = bearer.store.load() is not None
        why = f"{bearer.provider} tokens in {bearer.store.where()}"
        if not available:
            why += f": not logged in (`mailcli oauth login -a {account.name}`)"
    except CredentialsError as exc:
        available, why = False, exc.message
    source = {"name": "oauth2", "available": available, "detail": why}
    documents = [
        {"key": login, "answer": "oauth2" if available else None, "sources": [source]}
        for login in logins
    ]
    rows = [
        [login, 1, "oauth2", available, why, "<- used" if available else ""] for login in logins
    ]
    app.out.table(
        ["login", "step", "source", "available", "why", ""], rows, document={"logins": documents}
    )


def _endpoints(app: AppContext, host: str | None, user: str | None) -> list[Endpoint]:
    """The distinct logins of the account (SMTP and POP3) that have a user and a host."""
    found: dict[str, Endpoint] = {}
    for protocol in PROTOCOLS:
        try:
            endpoint = resolve_endpoint(protocol, app.account, ConnectionOptions(host, user=user))
        except ConfigError:
            continue
        if endpoint.user:
            found.setdefault(endpoint.credential_key, endpoint)
    if not found:
        raise UsageError(
            "no login to act on",
            hint="name it as USER@HOST, or give --user and --host, or configure an account",
        )
    return list(found.values())


def _read_new_password(app: AppContext, keys: list[str]) -> str:
    """From a hidden prompt (asked twice) on a terminal, else the first line of stdin."""
    if app.terminal.stdin_tty:
        value = click.prompt(
            f"Password for {', '.join(keys)}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        value = app.terminal.stdin.readline().rstrip("\r\n")
    if not value:
        raise UsageError("empty password: nothing stored")
    return str(value)
