"""The OAuth2 network side against a real authorization server on 127.0.0.1
(tests/servers/authserver.py): the three login flows, the token endpoint, error mapping.

No mocks of urllib: every request is real HTTP on loopback. The browser is the test:
its `open_url` fetches the authorization URL and follows the redirect to the listener.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from mailcli.auth.oauth.flows import browser_login, device_login, paste_login
from mailcli.auth.oauth.providers import Provider, registration_help, resolve_provider
from mailcli.auth.oauth.tokens import (
    Client,
    OAuthGrantError,
    TokenSet,
    exchange_code,
    refresh,
    revoke,
)
from mailcli.errors import ExitStatus, MailcliError
from tests.servers.authserver import AuthServer

try:
    from mailcli.config import OAuthSettings
except ImportError:  # config's OAuthSettings belongs to another change; same fields

    class OAuthSettings(NamedTuple):  # type: ignore[no-redef]
        provider: str
        client_id: str | None = None
        client_secret: str | None = None
        client_secret_command: str | None = None
        tenant: str = "common"
        authorize_url: str | None = None
        token_url: str | None = None
        device_url: str | None = None
        revoke_url: str | None = None
        scopes: tuple[str, ...] | None = None
        token_store: str = "keyring"


CLIENT_SECRET = "client-secret-do-not-show"


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy: a CI proxy must not carry the loopback requests."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def provider(auth_server: AuthServer) -> Provider:
    settings = OAuthSettings(
        provider="custom",
        authorize_url=auth_server.url("/authorize"),
        token_url=auth_server.url("/token"),
        device_url=auth_server.url("/device/code"),
        revoke_url=auth_server.url("/revoke"),
        scopes=("mail",),
    )
    return resolve_provider(settings)


@pytest.fixture
def client(auth_server: AuthServer) -> Client:
    return Client(auth_server.client_id, CLIENT_SECRET)


@pytest.fixture
def errors(auth_server: AuthServer) -> Iterator[list[MailcliError]]:
    """Every error a test expects; afterwards none may show a code, token or secret."""
    seen: list[MailcliError] = []
    yield seen
    secrets = [*auth_server.issued, CLIENT_SECRET]
    for error in seen:
        text = f"{error} {error!r} {error.hint}"
        assert not [s for s in secrets if s in text], text
        assert "\n" not in str(error)


def expect(
    errors: list[MailcliError], status: ExitStatus, call: Callable[[], object]
) -> MailcliError:
    with pytest.raises(MailcliError) as caught:
        call()
    errors.append(caught.value)
    assert caught.value.exit_status == status, caught.value
    return caught.value


def follow(url: str) -> bool:
    """A browser: fetch the authorization URL, follow its redirect to the listener."""
    with urllib.request.urlopen(url, timeout=10) as page:
        assert b"mailcli" in page.read()
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def location_of(url: str) -> str:
    """Where /authorize redirects to, without following it (a browser with no listener)."""
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(url, timeout=10)
    assert answer.value.code == 302
    return str(answer.value.headers["Location"])


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), **changes})).geturl()


def login(provider: Provider, client: Client) -> TokenSet:
    return browser_login(provider, client, port=None, open_url=follow, show_url=print)


def logged_in(provider: Provider, client: Client) -> str:
    """The refresh token of a browser login (there must be one)."""
    refresh_token = login(provider, client).refresh_token
    assert refresh_token
    return refresh_token


# -- the browser flow ----------------------------------------------------------------


def test_browser_login_end_to_end(
    auth_server: AuthServer, provider: Provider, client: Client
) -> None:
    shown: list[str] = []
    tokens = browser_login(provider, client, port=None, open_url=follow, show_url=shown.append)
    assert shown == []  # the browser opened: nothing to print
    assert tokens.access_token in auth_server.issued and tokens.refresh_token
    assert tokens.identity == auth_server.email
    assert tokens.lifetime == auth_server.access_lifetime
    query = auth_server.authorize_queries[0]
    assert query["code_challenge_method"] == "S256" and query["scope"] == "mail"
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert auth_server.requests["/token"] == 1
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    assert CLIENT_SECRET not in repr(client)


def test_browser_login_without_a_browser_shows_the_url(provider: Provider, client: Client) -> None:
    shown: list[str] = []

    def no_browser(url: str) -> bool:
        return False

    def user_opens_it(url: str) -> None:
        shown.append(url)
        follow(url)

    tokens = browser_login(provider, client, port=None, open_url=no_browser, show_url=user_opens_it)
    assert len(shown) == 1 and tokens.refresh_token


def test_microsoft_redirects_to_localhost(
    auth_server: AuthServer, provider: Provider, client: Client
) -> None:
    tokens = login(provider._replace(name="microsoft"), client)
    assert auth_server.authorize_queries[0]["redirect_uri"].startswith("http://localhost:")
    assert tokens.access_token


def test_wrong_state_is_refused_and_nothing_exchanged(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    def forged(url: str) -> bool:
        return follow(with_query(url, state="forged"))

    def run() -> TokenSet:
        return browser_login(provider, client, port=None, open_url=forged, show_url=print)

    expect(errors, ExitStatus.NOPERM, run)
    assert auth_server.requests["/authorize"] == 1
    assert auth_server.requests["/token"] == 0


def test_access_denied_on_the_callback(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    auth_server.deny = True
    error = expect(errors, ExitStatus.NOPERM, lambda: login(provider, client))
    assert "access_denied" in str(error)
    assert auth_server.requests["/token"] == 0


def test_nobody_comes_back_is_temporary(
    provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    def run() -> TokenSet:
        return browser_login(
            provider, client, port=None, open_url=lambda url: True, show_url=print, timeout=0.2
        )

    expect(errors, ExitStatus.TEMPFAIL, run)


def test_the_port_asked_for_is_used(
    auth_server: AuthServer, provider: Provider, client: Client
) -> None:
    from tests.servers.ports import free_port

    port = free_port()
    browser_login(provider, client, port=port, open_url=follow, show_url=print)
    assert auth_server.authorize_queries[0]["redirect_uri"] == f"http://127.0.0.1:{port}/"


def test_the_server_checks_the_pkce_verifier(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    from mailcli.auth.oauth.flows import authorization_url

    redirect = "http://127.0.0.1:9/"
    codes = []
    for _ in range(2):
        url = authorization_url(provider, client, redirect, "s", "right-verifier" * 4)
        codes.append(dict(parse_qsl(urlsplit(location_of(url)).query))["code"])

    def wrong() -> TokenSet:
        return exchange_code(provider, client, codes[0], "wrong-verifier" * 4, redirect)

    error = expect(errors, ExitStatus.NOPERM, wrong)
    assert isinstance(error, OAuthGrantError)
    tokens = exchange_code(provider, client, codes[1], "right-verifier" * 4, redirect)
    assert tokens.refresh_token


# -- the device flow -----------------------------------------------------------------


def test_device_login_honours_pending_and_slow_down(
    auth_server: AuthServer, provider: Provider, client: Client
) -> None:
    auth_server.device_interval = 3
    sleeps: list[float] = []
    shown: list[tuple[str, str]] = []
    tokens = device_login(
        provider, client, show_code=lambda *shown_: shown.append(shown_), sleep=sleeps.append
    )
    assert shown == [(auth_server.url("/device"), "WDJB-MJHT")]
    assert sleeps == [3, 3, 8]  # pending: same interval; slow_down: +5 s from then on
    assert auth_server.requests["/token"] == 3
    assert tokens.refresh_token and tokens.identity == auth_server.email


@pytest.mark.parametrize(
    ("answer", "status"),
    [("access_denied", ExitStatus.NOPERM), ("expired_token", ExitStatus.TEMPFAIL)],
)
def test_device_login_stops_on_a_final_answer(
    auth_server: AuthServer,
    provider: Provider,
    client: Client,
    errors: list[MailcliError],
    answer: str,
    status: ExitStatus,
) -> None:
    auth_server.device_sequence = ("authorization_pending", answer)
    sleeps: list[float] = []
    expect(
        errors, status, lambda: device_login(provider, client, show_code=print, sleep=sleeps.append)
    )
    assert len(sleeps) == 2


def test_device_login_gives_up_at_its_bound(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    auth_server.device_sequence = ("authorization_pending",) * 100
    sleeps: list[float] = []

    def run() -> TokenSet:
        return device_login(provider, client, show_code=print, sleep=sleeps.append, timeout=30)

    expect(errors, ExitStatus.TEMPFAIL, run)
    assert sum(sleeps) <= 30 and len(sleeps) == 6


def test_google_refuses_the_device_flow(errors: list[MailcliError]) -> None:
    google = resolve_provider(OAuthSettings(provider="google", client_id="id"))
    assert ("access_type", "offline") in google.extra_authorize
    assert ("prompt", "consent") in google.extra_authorize
    assert google.scopes == ("https://mail.google.com/",)

    def run() -> TokenSet:
        return device_login(google, Client("id", None), show_code=print, sleep=print)

    error = expect(errors, ExitStatus.USAGE, run)
    assert "invalid_scope" in str(error) and "--port" in (error.hint or "")
    # A device_url override does not make Google accept the mail scope there.
    overridden = OAuthSettings(provider="google", device_url="https://oauth2.googleapis.com/d")
    google = resolve_provider(overridden)
    expect(errors, ExitStatus.USAGE, run)


def test_microsoft_endpoints_and_scopes() -> None:
    ms = resolve_provider(OAuthSettings(provider="microsoft", tenant="organizations"))
    assert ms.token_url == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    assert ms.device_url and ms.device_allowed and "offline_access" in ms.scopes
    assert "POP.AccessAsUser.All" in registration_help("microsoft")
    assert "7 days" in registration_help("google")


# -- the paste flow ------------------------------------------------------------------


def test_paste_login(auth_server: AuthServer, provider: Provider, client: Client) -> None:
    shown: list[str] = []

    def paste() -> str:
        return "  " + location_of(shown[0]) + "\n"

    tokens = paste_login(provider, client, show_url=shown.append, read_redirect=paste)
    assert tokens.refresh_token and auth_server.requests["/token"] == 1


def test_paste_of_a_foreign_url_is_refused(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    shown: list[str] = []

    def paste() -> str:
        ours = location_of(shown[0])
        return ours.replace("127.0.0.1", "evil.example", 1)

    error = expect(
        errors,
        ExitStatus.DATAERR,
        lambda: paste_login(provider, client, show_url=shown.append, read_redirect=paste),
    )
    assert "\n" not in str(error) and auth_server.requests["/token"] == 0


def test_paste_with_a_wrong_state(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    shown: list[str] = []

    def paste() -> str:
        return location_of(with_query(shown[0], state="stale"))

    expect(
        errors,
        ExitStatus.NOPERM,
        lambda: paste_login(provider, client, show_url=shown.append, read_redirect=paste),
    )
    assert auth_server.requests["/token"] == 0


# -- refresh, rotation, revocation ---------------------------------------------------


def test_refresh_with_rotation(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    first = login(provider, client)
    rotated = first.refresh_token
    assert rotated
    second = refresh(provider, client, rotated)
    assert second.refresh_token and second.refresh_token != rotated
    assert second.access_token != first.access_token
    error = expect(errors, ExitStatus.NOPERM, lambda: refresh(provider, client, rotated))
    assert isinstance(error, OAuthGrantError) and "refresh token" in str(error)
    assert "mailcli oauth login" in (error.hint or "")
    assert refresh(provider, client, second.refresh_token).refresh_token


def test_refresh_without_rotation_keeps_the_refresh_token(
    auth_server: AuthServer, provider: Provider, client: Client
) -> None:
    auth_server.rotation = False
    first = login(provider, client)
    assert first.refresh_token
    second = refresh(provider, client, first.refresh_token)
    assert second.refresh_token == first.refresh_token
    assert refresh(provider, client, first.refresh_token).access_token


def test_revoked_refresh_token(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    refresh_token = logged_in(provider, client)
    auth_server.revoke_refresh_tokens()
    error = expect(errors, ExitStatus.NOPERM, lambda: refresh(provider, client, refresh_token))
    assert isinstance(error, OAuthGrantError)


def test_revoke(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    refresh_token = logged_in(provider, client)
    assert revoke(provider, client, refresh_token) is True
    assert auth_server.requests["/revoke"] == 1
    expect(errors, ExitStatus.NOPERM, lambda: refresh(provider, client, refresh_token))
    assert revoke(provider._replace(revoke_url=None), client, "x") is False


def test_google_grant_error_names_the_testing_expiry(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    google = provider._replace(name="google")
    error = expect(errors, ExitStatus.NOPERM, lambda: refresh(google, client, "refresh-unknown"))
    assert "7 days" in (error.hint or "")


# -- unreachable, broken and insecure endpoints ---------------------------------------


def test_stopped_server_is_temporary(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    refresh_token = logged_in(provider, client)
    auth_server.stop()
    expect(errors, ExitStatus.TEMPFAIL, lambda: refresh(provider, client, refresh_token))


def test_5xx_is_temporary(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    refresh_token = logged_in(provider, client)
    auth_server.token_status = 503
    expect(errors, ExitStatus.TEMPFAIL, lambda: refresh(provider, client, refresh_token))


def test_other_oauth_errors_name_the_error(
    auth_server: AuthServer, provider: Provider, errors: list[MailcliError]
) -> None:
    error = expect(
        errors, ExitStatus.NOPERM, lambda: refresh(provider, Client("stranger", None), "r")
    )
    assert "invalid_client" in str(error) and "unknown client" in str(error)


def test_plain_http_to_a_remote_host_is_refused(
    auth_server: AuthServer, provider: Provider, client: Client, errors: list[MailcliError]
) -> None:
    remote = "http://auth.example.invalid/token"
    settings = OAuthSettings(provider="custom", authorize_url=remote, token_url=remote)
    expect(errors, ExitStatus.CONFIG, lambda: resolve_provider(settings))
    # A Provider built by hand is checked before anything is sent.
    insecure = provider._replace(token_url=remote)
    expect(errors, ExitStatus.CONFIG, lambda: refresh(insecure, client, "refresh-x"))
    expect(
        errors, ExitStatus.CONFIG, lambda: login(provider._replace(authorize_url=remote), client)
    )


def test_custom_provider_needs_its_urls(errors: list[MailcliError]) -> None:
    expect(errors, ExitStatus.CONFIG, lambda: resolve_provider(OAuthSettings(provider="custom")))
    unknown = OAuthSettings(provider="yahoo")  # type: ignore[arg-type]  # what a config may say
    expect(errors, ExitStatus.CONFIG, lambda: resolve_provider(unknown))


def test_introspection_for_dovecot(
    auth_server: AuthServer, provider: Provider, client: Client
) -> None:
    """What Dovecot's `introspection_mode = post` sees: token=... in a form."""
    from tests.servers.jwt import claims

    tokens = login(provider, client)
    assert claims(tokens.access_token)["email"] == auth_server.email

    def introspect(token: str) -> dict[str, Any]:
        data = urlencode({"token": token}).encode()
        with urllib.request.urlopen(auth_server.url("/introspect"), data, timeout=10) as answer:
            return dict(json.load(answer))

    answer = introspect(tokens.access_token)
    assert answer["active"] is True and answer["email"] == auth_server.email
    assert answer["exp"] >= int(tokens.expires_at) - 1
    assert introspect("not-a-token-we-issued") == {"active": False}
    assert revoke(provider, client, tokens.access_token)
    assert introspect(tokens.access_token) == {"active": False}
