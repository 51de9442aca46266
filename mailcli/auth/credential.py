"""What a session logs in with: a `Credential`, a password or an OAuth2 bearer source.

Both kinds are lazy: nothing is asked for until the session reaches AUTH, so a run that
stops before it (a refused connection, `--quit-after`, no STARTTLS offered) never runs
the credential chain nor refreshes a token.

- `Password(secret)`: `secret()` gives the password (the credential chain: environment,
  password command, keyring, prompt). A forced `--auth xoauth2` sends it as the token
  (a token printed by a password_command).
- `BearerSource` (an account with an `oauth2` table; `auth.oauth.access.OAuthBearer`):
  calling it gives an access token valid for at least the next minute; `renew()` gets a
  fresh one after the server refused the current one.

`login_with` is the one place that tells the two apart: each protocol's `auth` module
hands it its password login and its bearer login.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from mailcli.errors import PermissionDeniedError

if TYPE_CHECKING:
    from mailcli.config import OAuthProvider

_T = TypeVar("_T")


class Password(NamedTuple):
    """A password login; `secret()` runs the credential chain (it may prompt)."""

    secret: Callable[[], str]


class BearerSource:
    """An OAuth2 access-token source. Subclasses (mailcli.auth.oauth) do the work."""

    provider: OAuthProvider = "custom"  # Microsoft speaks no OAUTHBEARER
    # The SASL form: None chooses by provider and protocol (`sasl.wants_two_step`); True
    # sends the token only after the server's empty continuation, False with the AUTH command.
    two_step: bool | None = None

    def __call__(self) -> str:
        """A token valid for at least the next minute (refreshed ahead of expiry)."""
        raise NotImplementedError

    def renew(self) -> str:
        """A fresh token after the server refused the current one (refresh once)."""
        raise NotImplementedError

    def refused(self, user: str, detail: str) -> PermissionDeniedError:
        """The error for a token the server still refuses after `renew` (exit 77)."""
        return PermissionDeniedError(
            f"the server refused the OAuth2 token for {user!r}: {detail}",
            hint="log in again with `mailcli oauth login`",
        )


Credential = Password | BearerSource


def login_with(
    credential: Credential,
    *,
    password: Callable[[Password], _T],
    bearer: Callable[[BearerSource], _T],
) -> _T:
    """`password(credential)` or `bearer(credential)`, whichever kind it is."""
    if isinstance(credential, BearerSource):
        return bearer(credential)
    return password(credential)
