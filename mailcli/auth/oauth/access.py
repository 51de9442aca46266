"""The bearer-token source the sessions use for an account with an `oauth2` table.

`OAuthBearer()` returns an access token, refreshed ahead of its expiry: by 60 s, or by a
tenth of the token's lifetime when that is shorter (a 5-minute token is refreshed in its
last 30 s, not on every run). A refresh runs under a lock per account (a flock on
`$XDG_STATE_HOME/mailcli/oauth/ACCOUNT.lock`) and re-reads the store once it holds it:
two cron jobs at the same minute refresh once, and the second never sends a refresh
token the first has just had rotated away (which the provider would answer with
invalid_grant). A rotated refresh token is stored before the access token is handed out.

Errors: no stored tokens, or the token endpoint refuses the refresh token
(`invalid_grant`: the stored tokens are then cleared, they can never work again): 77
with the hint to log in again (and, for Google, the 7-day expiry of a "Testing" app's
refresh tokens); the endpoint unreachable: 75 (from mailcli.auth.oauth.tokens).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mailcli.auth.credential import BearerSource
from mailcli.config import OAuthSettings, state_home
from mailcli.errors import PermissionDeniedError

if TYPE_CHECKING:
    from mailcli.auth.oauth.store import TokenStore
    from mailcli.auth.oauth.tokens import Client, TokenSet
    from mailcli.fsutil import FileLock

MARGIN = 60.0  # seconds before expiry when a token is renewed at the latest
GOOGLE_TESTING_HINT = (
    'refresh tokens of a Google app in "Testing" publishing status expire after 7 days: '
    "publish the app (In production) to keep them"
)

Refresher = Callable[[str], "TokenSet"]


def refresh_margin(lifetime: float) -> float:
    """How long before expiry a token is renewed: 60 s, or lifetime/10 when shorter."""
    return min(MARGIN, lifetime / 10) if lifetime > 0 else MARGIN


class OAuthBearer(BearerSource):
    """Access tokens for one account, from its token store and the token endpoint."""

    def __init__(
        self,
        account: str,
        settings: OAuthSettings,
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        refresher: Refresher | None = None,
        store: TokenStore | None = None,
    ) -> None:
        from mailcli.auth.oauth.store import token_store

        self.account = account
        self.settings = settings
        self.provider = settings.provider
        self.store = store if store is not None else token_store(account, settings, environ)
        self._environ = environ
        self._clock = clock
        self._refresher = refresher if refresher is not None else self._refresh_at_endpoint

    def __call__(self) -> str:
        tokens = self._stored()
        if self._fresh(tokens):
            return tokens.access_token
        with self._refresh_lock():
            tokens = self._stored()  # another process may have refreshed meanwhile
            if self._fresh(tokens):
                return tokens.access_token
            return self._refresh(tokens)

    def renew(self) -> str:
        """A new access token now: the server refused the one it was given."""
        with self._refresh_lock():
            return self._refresh(self._stored())

    def refused(self, user: str, detail: str) -> PermissionDeniedError:
        return PermissionDeniedError(
            f"the server refused the OAuth2 token for {user!r}: {detail}", hint=self.login_hint()
        )

    def login_hint(self) -> str:
        hint = f"log in again with `mailcli oauth login -a {self.account}`"
        return f"{hint}; {GOOGLE_TESTING_HINT}" if self.provider == "google" else hint

    def status(self) -> dict[str, Any]:
        """What `mailcli oauth status` shows: never a token."""
        tokens = self.store.load()
        expires_at = tokens.expires_at if tokens and tokens.access_token else None
        return {
            "account": self.account,
            "provider": self.provider,
            "logged_in": tokens is not None,
            "identity": tokens.identity if tokens else None,
            "scopes": tokens.scope.split() if tokens else [],
            "access_token_expires": expiry_text(expires_at) if expires_at else None,
            "access_token_valid": bool(tokens and self._fresh(tokens)),
            "refresh_token": bool(tokens and tokens.refresh_token),
            "stored": self.store.where(),
            "client_secret": self.client_secret_source(),
        }

    def client_secret_source(self) -> str:
        """Where client() takes the secret from: config, command, stored or none."""
        if self.settings.client_secret is not None:
            return "config"
        if self.settings.client_secret_command:
            return "command"
        return "stored" if self.store.client_secret() is not None else "none"

    def client(self) -> Client:
        """The OAuth2 client: client_id and the secret, from the first that has one: the
        config's client_secret, its client_secret_command (first line), the secret
        stored at `oauth login --client-secret`; else none (a public client)."""
        from mailcli.auth.credentials import run_password_command
        from mailcli.auth.oauth.tokens import Client

        secret = self.settings.client_secret
        if secret is None and self.settings.client_secret_command:
            secret = run_password_command(self.settings.client_secret_command)
        if secret is None:
            secret = self.store.client_secret()
        return Client(self.settings.client_id or "", secret)

    def _fresh(self, tokens: TokenSet) -> bool:
        remaining = tokens.expires_at - self._clock()
        return bool(tokens.access_token) and remaining > refresh_margin(tokens.lifetime)

    def _stored(self) -> TokenSet:
        tokens = self.store.load()
        if tokens is None:
            raise PermissionDeniedError(
                f"account {self.account!r} is not logged in with OAuth2: "
                f"run `mailcli oauth login -a {self.account}`"
            )
        return tokens

    def _refresh(self, tokens: TokenSet) -> str:
        if not tokens.refresh_token:
            raise PermissionDeniedError(
                f"the OAuth2 access token of account {self.account!r} has expired and "
                "there is no refresh token",
                hint=self.login_hint(),
            )
        from mailcli.auth.oauth.tokens import OAuthGrantError

        try:
            fresh = self._refresher(tokens.refresh_token)
        except OAuthGrantError as exc:
            # Refused for good: no later run should send it again. A stored client
            # secret stays: the login the hint asks for needs it.
            self.store.clear()
            raise PermissionDeniedError(
                f"{exc.message} (account {self.account!r}); the stored tokens were removed",
                hint=self.login_hint(),
            ) from exc
        self.store.save(fresh)  # the rotated refresh token is stored before any use
        return fresh.access_token

    def _refresh_at_endpoint(self, refresh_token: str) -> TokenSet:
        from mailcli.auth.oauth.providers import resolve_provider
        from mailcli.auth.oauth.tokens import refresh

        return refresh(resolve_provider(self.settings), self.client(), refresh_token)

    def _refresh_lock(self) -> FileLock:
        """One refresh per account at a time. Waiting is bounded: the holder is
        refreshing, within the token endpoint's timeout."""
        from mailcli.auth.oauth.store import lock_path
        from mailcli.fsutil import FileLock

        path = lock_path(self.account, state_home(self._environ))
        return FileLock(path, f"OAuth2 refresh of account {self.account!r}", wait=True)


def expiry_text(epoch: float) -> str:
    """An expiry as an ISO 8601 UTC time; what datetime cannot show (an endpoint's
    absurd expires_in) is said in words, never an error."""
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return "beyond the year 9999" if epoch > 0 else "not a time"
