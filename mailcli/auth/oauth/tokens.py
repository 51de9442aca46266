"""The token endpoint: exchange an authorization code, refresh, revoke (RFC 6749, 7009).

urllib with form-encoded requests and JSON answers, nothing else; imported only when a
request is made (~30-50 ms: urllib.request brings http.client, email and ssl), so that
TokenSet and Client cost nothing to the store and the bearer source. Errors are mapped
once, in `post_form`: unreachable, timed out or a 5xx answer is temporary (75);
`invalid_grant` is `OAuthGrantError` (77: the refresh token or code was refused, log in
again); any other OAuth error is 77 naming `error` and `error_description`. An answer
that is not a JSON object (nested past Python's stack included) or not a token answer is
76. No token, code or client secret ever appears in a message or a repr.

Lifetimes: `expires_in` must be a positive number (76 otherwise: NaN, 0, a bool); one
longer than MAX_LIFETIME (400 days, the cap browsers put on a cookie's Max-Age) is taken
as MAX_LIFETIME, as "never expires" in practice: the token is refreshed after that long
instead of recording an expiry no clock or store can hold.

Time: each read waits at most `timeout`, and the whole request (connect, TLS, the answer
to its last byte) must be done within TOTAL_FACTOR x `timeout`, however the endpoint
dribbles its answer (75, "too slow"): at that deadline its socket is shut down. A request
made for a mail session's login takes that session's timeout when it is shorter
(`network.current_session_timeout`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from mailcli.auth.oauth.providers import Provider, require_secure_url
from mailcli.errors import PermissionDeniedError, ProtocolError, TempFailError
from mailcli.network import current_session_timeout

if TYPE_CHECKING:
    import urllib.error
    import urllib.request

TOTAL_FACTOR = 2  # the whole request within this many timeouts
_MAX_ANSWER = 1024 * 1024  # a token answer is a few KiB; more is not a token endpoint
_DEFAULT_LIFETIME = 3600.0  # RFC 6749 makes expires_in optional; providers say an hour
MAX_LIFETIME = 400 * 24 * 3600.0  # longer is "never": used this long, then refreshed
RELOGIN_HINT = "log in again with `mailcli oauth login`"
GOOGLE_TESTING_HINT = (
    'a Google project in "Testing" status gets refresh tokens that expire after 7 days: '
    "publish the app (OAuth consent screen -> Publish app), then log in again with "
    "`mailcli oauth login`"
)


class TokenSet(NamedTuple):
    """What the token endpoint granted."""

    access_token: str
    expires_at: float  # epoch seconds
    refresh_token: str | None
    scope: str = ""
    lifetime: float = 0.0  # expires_in as granted (for the refresh margin)
    identity: str | None = None  # email/preferred_username from the id_token, if any

    def __repr__(self) -> str:
        refresh = "yes" if self.refresh_token else "no"
        return (
            f"TokenSet(expires_at={self.expires_at:.0f}, refresh_token={refresh}, "
            f"scope={self.scope!r}, lifetime={self.lifetime:.0f}, identity={self.identity!r})"
        )


class Client(NamedTuple):
    """The app registered with the provider."""

    client_id: str
    client_secret: str | None

    def __repr__(self) -> str:
        secret = "set" if self.client_secret else "none"
        return f"Client(client_id={self.client_id!r}, client_secret={secret})"


class OAuthError(PermissionDeniedError):
    """The endpoint answered with an OAuth error; `error` is its code (never a secret)."""

    def __init__(self, message: str, *, error: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.error = error


class OAuthGrantError(OAuthError):
    """`invalid_grant`: the refresh token (or code) was refused; log in again (77)."""


def exchange_code(
    provider: Provider,
    client: Client,
    code: str,
    verifier: str,
    redirect_uri: str,
    *,
    timeout: float = 30.0,
) -> TokenSet:
    """The tokens for an authorization code (with its PKCE verifier)."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    answer = post_form(
        provider,
        provider.token_url,
        _with_client(client, fields),
        timeout=timeout,
        what="the authorization code",
    )
    return token_set(answer)


def refresh(
    provider: Provider, client: Client, refresh_token: str, *, timeout: float = 30.0
) -> TokenSet:
    """A new access token; keeps `refresh_token` when the answer carries none (no rotation)."""
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    answer = post_form(
        provider,
        provider.token_url,
        _with_client(client, fields),
        timeout=timeout,
        what="the refresh token",
    )
    return token_set(answer, previous_refresh=refresh_token)


def revoke(provider: Provider, client: Client, token: str, *, timeout: float = 30.0) -> bool:
    """Revoke `token` (RFC 7009); False when the provider has no revocation URL.

    A token the provider already considers invalid (`invalid_token`, Google's answer
    for a revoked one) counts as revoked: it can no longer be used either way."""
    if provider.revoke_url is None:
        return False
    fields = _with_client(client, {"token": token})
    try:
        post_form(provider, provider.revoke_url, fields, timeout=timeout, what="the revocation")
    except OAuthError as refused:
        if refused.error != "invalid_token":
            raise
    return True


def _with_client(client: Client, fields: dict[str, str]) -> dict[str, str]:
    fields = {**fields, "client_id": client.client_id}
    if client.client_secret:
        fields["client_secret"] = client.client_secret
    return fields


def post_form(
    provider: Provider, url: str, fields: dict[str, str], *, timeout: float, what: str
) -> dict[str, object]:
    """POST `fields` form-encoded to `url`; the JSON answer ({} for an empty 2xx body).

    `what` names the request in messages ("the refresh token"), never its content."""
    import urllib.error
    import urllib.parse
    import urllib.request
    from http.client import HTTPException

    from mailcli.auth.oauth.watchdog import Watchdog

    require_secure_url(url, "endpoint")
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode("ascii"),
        headers={"Accept": "application/json", "User-Agent": "mailcli"},
        method="POST",
    )
    host = urllib.parse.urlsplit(url).netloc
    session = current_session_timeout()
    timeout = min(timeout, session) if session is not None else timeout
    watch = Watchdog(TOTAL_FACTOR * timeout)
    try:
        with watch, watch.opener().open(request, timeout=timeout) as response:
            body = response.read(_MAX_ANSWER)
        watch.check(host)
    except urllib.error.HTTPError as answer:
        watch.check(host)
        raise _http_error(provider, answer, host, what) from answer
    except urllib.error.URLError as failed:
        watch.check(host)
        raise _unreachable(failed.reason, host) from failed
    except (OSError, HTTPException) as failed:
        watch.check(host)
        raise _unreachable(failed, host) from failed
    document = _json_answer(body, host, allow_empty=True)
    refused = oauth_error(provider, document, what)  # some servers answer errors with 200
    if refused is not None:
        raise refused
    return document


def _unreachable(reason: object, host: str) -> Exception:
    import ssl

    if isinstance(reason, ssl.SSLCertVerificationError):
        return PermissionDeniedError(
            f"the OAuth2 endpoint {host} presented an untrusted certificate: "
            f"{reason.verify_message}"
        )
    detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
    if isinstance(reason, TimeoutError):
        detail = "timed out"
    return TempFailError(
        f"the OAuth2 endpoint {host} is unreachable: {detail}",
        hint="try again later; mailcli keeps the stored tokens",
    )


def _http_error(
    provider: Provider, answer: urllib.error.HTTPError, host: str, what: str
) -> Exception:
    from http.client import HTTPException

    status = answer.code
    try:
        body = answer.read(_MAX_ANSWER)
    except (OSError, HTTPException):
        body = b""
    finally:
        answer.close()
    if status >= 500 or status == 429:
        return TempFailError(
            f"the OAuth2 endpoint {host} answered HTTP {status}",
            hint="try again later; mailcli keeps the stored tokens",
        )
    try:
        document = _json_answer(body, host, allow_empty=False)
    except ProtocolError:
        return ProtocolError(f"the OAuth2 endpoint {host} answered HTTP {status} without JSON")
    return oauth_error(provider, document, what) or ProtocolError(
        f"the OAuth2 endpoint {host} answered HTTP {status} without an OAuth error"
    )


def oauth_error(provider: Provider, document: dict[str, object], what: str) -> OAuthError | None:
    """The error an OAuth error answer ({"error": ...}) stands for; None if it is none."""
    error = document.get("error")
    if not isinstance(error, str):
        return None
    code = _printable(error, 64)
    described = document.get("error_description")
    detail = f"{code}: {_printable(described, 200)}" if isinstance(described, str) else code
    if code == "invalid_grant":
        hint = GOOGLE_TESTING_HINT if provider.name == "google" else RELOGIN_HINT
        return OAuthGrantError(
            f"{provider.name}'s token endpoint refused {what} ({detail})", error=code, hint=hint
        )
    return OAuthError(f"{provider.name}'s OAuth2 endpoint refused {what} ({detail})", error=code)


def _printable(text: str, limit: int) -> str:
    """Server-supplied text for a one-line message: printable, bounded."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _json_answer(body: bytes, host: str, *, allow_empty: bool) -> dict[str, object]:
    import json

    if allow_empty and not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # json recurses per level
        document = None
    if not isinstance(document, dict):
        raise ProtocolError(f"the OAuth2 endpoint {host} answered something that is not JSON")
    return document


def token_set(
    answer: dict[str, object], *, previous_refresh: str | None = None, now: float | None = None
) -> TokenSet:
    """A successful token answer as a TokenSet; ProtocolError (76) when it is not one."""
    access = answer.get("access_token")
    token_type = answer.get("token_type", "Bearer")
    if not isinstance(access, str) or not access:
        raise ProtocolError("the OAuth2 token endpoint's answer has no access_token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ProtocolError("the OAuth2 token endpoint granted a token that is not a Bearer token")
    lifetime = _lifetime(answer.get("expires_in", _DEFAULT_LIFETIME))
    refresh_token = answer.get("refresh_token")
    scope = answer.get("scope")
    id_token = answer.get("id_token")
    return TokenSet(
        access_token=access,
        expires_at=(time.time() if now is None else now) + lifetime,
        refresh_token=refresh_token if isinstance(refresh_token, str) else previous_refresh,
        scope=scope if isinstance(scope, str) else "",
        lifetime=lifetime,
        identity=identity_of(id_token) if isinstance(id_token, str) else None,
    )


def _lifetime(expires_in: object) -> float:
    """`expires_in` in seconds, at most MAX_LIFETIME; 76 when it is no positive number."""
    if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
        expires_in = float(expires_in)  # some servers send a string; float has no digit cap
    # bool is an int; NaN fails every comparison; a huge int or inf compares exactly.
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or not expires_in > 0
    ):
        raise ProtocolError("the OAuth2 token endpoint's expires_in is not a positive number")
    return float(min(expires_in, MAX_LIFETIME))


def identity_of(id_token: str) -> str | None:
    """Who logged in, from an OpenID Connect id_token: `email`, else `preferred_username`.

    Not verified: it came straight from the token endpoint over TLS, and is only shown;
    so one unreadable in any way (JSON nested past the stack too) is None, never an error."""
    import base64
    import binascii
    import json

    try:
        body = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (IndexError, binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    for name in ("email", "preferred_username", "upn"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return _printable(value, 200)
    return None
