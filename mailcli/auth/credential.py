"""What a session logs in with instead of a password: an OAuth2 bearer-token source.

A `BearerSource` (an account with an `oauth2` table; `auth.oauth.access.OAuthBearer`):
calling it gives an access token valid for at least the next minute; `renew()` gets a
fresh one after the server refused the current one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailcli.errors import PermissionDeniedError

if TYPE_CHECKING:
    from mailcli.config import OAuthProvider


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
