"""`mailcli oauth login|status|token|logout`: an account's OAuth2 tokens.

The account is the global `-a NAME` (or $MAILCLI_ACCOUNT, default_account, the only
one); it needs an `[accounts.NAME.oauth2]` table. The OAuth2 modules (urllib, json,
http.server) are imported only when a subcommand runs, never for `--help`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from mailcli.cli.context import AppContext

if TYPE_CHECKING:
    from mailcli.auth.oauth.access import OAuthBearer
    from mailcli.auth.oauth.tokens import TokenSet


@click.group()
def oauth() -> None:
    """Log in with OAuth2 (Google, Microsoft 365, custom) and manage the tokens."""


@oauth.command()
@click.option(
    "--browser", "mode", flag_value="browser", default=True, help="Log in in a browser (default)."
)
@click.option("--device", "mode", flag_value="device", help="Show a code to enter elsewhere.")
@click.option("--paste", "mode", flag_value="paste", help="Paste the redirected address back.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Local port for the browser's redirect (default random; for ssh -L).",
)
@click.option("--no-open", is_flag=True, help="Print the login URL instead of opening a browser.")
@click.option(
    "--client-secret",
    "ask_client_secret",
    is_flag=True,
    help="Ask for the app's client secret (stdin's first line when piped); store it "
    "with the tokens.",
)
@click.pass_obj
def login(
    app: AppContext, mode: str, port: int | None, no_open: bool, ask_client_secret: bool
) -> None:
    """Log in and store the tokens (keyring, or the token file)."""
    from mailcli.auth.oauth import flows
    from mailcli.auth.oauth.providers import resolve_provider
    from mailcli.auth.oauth.tokens import Client

    bearer = _bearer(app)
    if ask_client_secret:
        _refuse_client_secret(app, bearer, mode)
    _require_client_id(app, bearer)
    given = _read_client_secret(app, bearer) if ask_client_secret else None
    provider = resolve_provider(bearer.settings)
    client = bearer.client() if given is None else Client(bearer.settings.client_id or "", given)
    if mode == "device":
        tokens = flows.device_login(provider, client, show_code=_show_code(app))
    elif mode == "paste":
        tokens = flows.paste_login(
            provider,
            client,
            show_url=_show_paste_url(app),
            read_redirect=app.terminal.stdin.readline,
        )
    else:
        tokens = flows.browser_login(
            provider, client, port=port, open_url=_opener(app, no_open), show_url=_show_url(app)
        )
    bearer.store.save(tokens, client_secret=given)
    app.out.info(_logged_in(bearer, tokens))


@oauth.command()
@click.pass_obj
def status(app: AppContext) -> None:
    """Provider, scopes, expiry, where the tokens are; never a token."""
    document = _bearer(app).status()
    pairs = [(key, " ".join(v) if isinstance(v, list) else v) for key, v in document.items()]
    app.out.fields(pairs, document=document)


def _has_client_secret(bearer: OAuthBearer) -> bool:
    from mailcli.errors import CredentialsError

    try:
        return bearer.store.client_secret() is not None
    except CredentialsError:  # damaged: logout is how it goes away
        return True


@oauth.command()
@click.pass_obj
def token(app: AppContext) -> None:
    """Print a valid access token, refreshed when needed (a passwordeval)."""
    value = _bearer(app)()
    app.out.text(value, document={"access_token": value})


@oauth.command()
@click.option("--revoke", is_flag=True, help="Also revoke the tokens at the provider.")
@click.pass_obj
def logout(app: AppContext, revoke: bool) -> None:
    """Forget the tokens (--revoke: at the provider too)."""
    bearer = _bearer(app)
    stored = bearer.store.load() if revoke else None  # damaged tokens can still go
    if stored is not None:
        _revoke(app, bearer, stored)
    what = "tokens and client secret" if _has_client_secret(bearer) else "tokens"
    found = bearer.store.clear(client_secret=True)
    where = bearer.store.where()
    app.out.info(
        f"forgot the OAuth2 {what} of account {bearer.account!r} ({where})"
        if found
        else f"account {bearer.account!r} had no stored OAuth2 tokens ({where})"
    )


def _revoke(app: AppContext, bearer: OAuthBearer, stored: TokenSet) -> None:
    """Before forgetting: a failure (75, 77) leaves the tokens stored, to try again."""
    from mailcli.auth.oauth.providers import resolve_provider
    from mailcli.auth.oauth.tokens import revoke

    secret = stored.refresh_token or stored.access_token
    if revoke(resolve_provider(bearer.settings), bearer.client(), secret):
        app.out.info(f"revoked the tokens of account {bearer.account!r} at {bearer.provider}")
    else:
        app.out.warning(
            f"{bearer.provider} has no revocation URL: the tokens are only forgotten here"
        )


def _bearer(app: AppContext) -> OAuthBearer:
    """The selected account's bearer source; 78 when there is none or no oauth2 table."""
    from mailcli.auth.oauth.access import OAuthBearer
    from mailcli.errors import ConfigError

    account = app.account
    if account is None:
        raise ConfigError(
            "no account selected: OAuth2 tokens belong to an account",
            hint="name one with -a NAME (see `mailcli account list`)",
        )
    if account.oauth2 is None:
        raise ConfigError(
            f"{app.config.path}: accounts.{account.name}.oauth2: missing: account "
            f"{account.name!r} does not log in with OAuth2",
            hint=f'add [accounts.{account.name}.oauth2] with provider = "google", '
            '"microsoft" or "custom" and your client_id',
        )
    return OAuthBearer(account.name, account.oauth2)


def _require_client_id(app: AppContext, bearer: OAuthBearer) -> None:
    """mailcli ships no client IDs: without one, print how to register an app."""
    from mailcli.auth.oauth.providers import registration_help
    from mailcli.errors import ConfigError

    if bearer.settings.client_id:
        return
    app.terminal.stderr.write(registration_help(bearer.settings.provider) + "\n\n")
    raise ConfigError(
        f"{app.config.path}: accounts.{bearer.account}.oauth2.client_id: missing: register "
        f"an app with {bearer.provider} (the steps are above) and set its client ID"
    )


def _refuse_client_secret(app: AppContext, bearer: OAuthBearer, mode: str) -> None:
    """--client-secret where it cannot work: one line, no hint, nothing asked yet."""
    from mailcli.errors import ConfigError, UsageError

    if mode == "paste" and not app.terminal.stdin_tty:
        raise UsageError(
            "--client-secret and --paste both read stdin, which is not a terminal: "
            "use one of them, or run the login in a terminal"
        )
    settings, prefix = bearer.settings, f"accounts.{bearer.account}.oauth2"
    for key, value in (
        ("client_secret", settings.client_secret),
        ("client_secret_command", settings.client_secret_command),
    ):
        if value is not None:
            raise ConfigError(
                f"{app.config.path}: {prefix}.{key}: the config already gives the client "
                f"secret: remove {key} to store one at login with --client-secret"
            )


def _read_client_secret(app: AppContext, bearer: OAuthBearer) -> str:
    """From a hidden prompt on a terminal (on stderr), else stdin's first line: never argv."""
    from mailcli.errors import UsageError

    if app.terminal.stdin_tty:
        value = click.prompt(
            f"Client secret of {bearer.provider} app {bearer.settings.client_id}",
            hide_input=True,
            err=True,
        )
    else:
        value = app.terminal.stdin.readline()
    secret = str(value).strip()
    if not secret:
        raise UsageError("empty client secret: nothing stored")
    return secret


def _opener(app: AppContext, no_open: bool) -> Callable[[str], bool]:
    def open_url(url: str) -> bool:
        if no_open or not _has_display():
            return False
        import webbrowser  # here: it imports shlex, subprocess and probes for browsers

        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            return False
        if opened:
            app.terminal.stderr.write(
                f"Opened the login page in your browser. If not, open:\n{url}\n"
            )
        return opened

    return open_url


def _has_display() -> bool:
    """On Linux (and the BSDs) a browser needs X11 or Wayland; macOS and Windows have one."""
    if sys.platform.startswith(("darwin", "win")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _show_url(app: AppContext) -> Callable[[str], None]:
    def show(url: str) -> None:
        app.terminal.stderr.write(f"Open this address in a browser to log in:\n{url}\n")
        app.terminal.stderr.flush()

    return show


def _show_paste_url(app: AppContext) -> Callable[[str], None]:
    def show(url: str) -> None:
        app.terminal.stderr.write(
            f"Open this address in a browser to log in:\n{url}\nThe browser then fails to "
            "load a 127.0.0.1 address: copy that whole address from its address bar and "
            "paste it here:\n"
        )
        app.terminal.stderr.flush()

    return show


def _show_code(app: AppContext) -> Callable[[str, str], None]:
    def show(verification_uri: str, user_code: str) -> None:
        app.terminal.stderr.write(
            f"To log in, open {verification_uri} and enter the code {user_code}\n"
        )
        app.terminal.stderr.flush()

    return show


def _logged_in(bearer: OAuthBearer, tokens: TokenSet) -> str:
    from mailcli.auth.oauth.access import expiry_text

    who = tokens.identity or "(the provider did not say who)"
    return (
        f"logged in as {who} (account {bearer.account!r}, {bearer.provider}); the access "
        f"token is valid until {expiry_text(tokens.expires_at)}; tokens stored in "
        f"{bearer.store.where()}"
    )
