"""The relays a message may go through: the account's own SMTP server, then each of its
`fallback` accounts' servers (`mailcli.smtp.failover`), for `send`, `sendmail` and
`queue run`.

The first relay is resolved as every command resolves its server (options, environment,
file). A fallback is its own account's server alone: its host, port, security, user,
password command and credential from the file, never the options or `MAILCLI_*`
variables that name the first server or its password (`MAILCLI_PASSWORD` sent to
another server would hand it a secret it was never meant to see); only the timeout, a
property of the run, is shared. A fallback's own fallbacks are not followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailcli.cli.context import AppContext, TerminalPrompter

if TYPE_CHECKING:
    from mailcli.auth.credential import Credential
    from mailcli.config import Account
    from mailcli.endpoint import Endpoint
    from mailcli.smtp.envelope import Outgoing
    from mailcli.smtp.failover import Handover, Relay
    from mailcli.smtp.phases import SmtpPhase
    from mailcli.smtp.session import SmtpSession


def relays(
    app: AppContext,
    first: Endpoint,
    account: Account | None,
    quit_after: SmtpPhase | None = None,
) -> list[Relay]:
    """`first` (already resolved, with the run's credential), then `account`'s
    fallbacks; with `quit_after` (`send --quit-after`, a probe of one server) `first`
    alone."""
    from mailcli.smtp.failover import Relay

    def open_first() -> SmtpSession:
        return _session(app, first, app.credential(first), quit_after)

    chain = [Relay(first.account, open_first)]
    if account is None or quit_after is not None:
        return chain
    for name in account.fallback:
        fallback = app.config.accounts[name]  # the config checked that it exists
        chain.append(Relay(name, _fallback_opener(app, fallback, first.timeout)))
    return chain


def account_relays(app: AppContext, account_name: str | None) -> list[Relay]:
    """sendmail's and `queue run`'s relays for an account (None: the default): its own
    server from file and environment, then its fallbacks."""
    from mailcli.endpoint import ConnectionOptions, resolve_endpoint

    account = app.config.select_account(account_name)
    endpoint = resolve_endpoint("smtp", account, ConnectionOptions())
    return relays(app, app.with_key_passphrase(endpoint), account)


def submit(
    app: AppContext, first: Endpoint, outgoing: Outgoing, quit_after: SmtpPhase | None
) -> Handover:
    """`send`'s one message: `first` (what its options resolve), then the selected
    account's fallbacks."""
    from mailcli.smtp.failover import RelayChain

    with RelayChain(relays(app, first, app.account, quit_after)) as chain:
        return chain.send(outgoing, last=True)


def _fallback_opener(
    app: AppContext, account: Account, timeout: float
) -> Callable[[], SmtpSession]:
    from mailcli.endpoint import ConnectionOptions, resolve_endpoint

    def open_session() -> SmtpSession:
        # No MAILCLI_* variable: those name the first server (the run's timeout, the one
        # setting the relays share, comes as an option).
        endpoint = resolve_endpoint("smtp", account, ConnectionOptions(timeout=timeout), {})
        endpoint = app.with_key_passphrase(endpoint)
        return _session(app, endpoint, _credential(app, account, endpoint))

    return open_session


def _credential(app: AppContext, account: Account, endpoint: Endpoint) -> Credential:
    """The fallback account's own credential: its OAuth2 tokens, or the password chain
    for its USER@HOST without the run's MAILCLI_PASSWORD."""
    if account.oauth2 is not None:
        from mailcli.auth.oauth.access import OAuthBearer

        return OAuthBearer(account.name, account.oauth2)
    from mailcli.auth.credential import Password
    from mailcli.auth.credentials import get_password

    def secret() -> str:
        prompter = TerminalPrompter() if app.terminal.stdin_tty else None
        return get_password(
            endpoint.credential_key,
            password_command=endpoint.password_command,
            environ={**os.environ, "MAILCLI_PASSWORD": ""},  # the first server's
            prompter=prompter,
        ).value

    return Password(secret)


def _session(
    app: AppContext,
    endpoint: Endpoint,
    credential: Credential,
    quit_after: SmtpPhase | None = None,
) -> SmtpSession:
    from mailcli.smtp.session import SmtpSession

    return SmtpSession(
        endpoint, credential=credential, transcript=app.transcript(), quit_after=quit_after
    )
