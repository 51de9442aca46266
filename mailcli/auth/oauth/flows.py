"""The three ways to log in: browser (loopback listener), device code, pasted redirect.

All use PKCE S256 (RFC 7636) where a code is exchanged, and a random `state` checked on
the way back (a mismatch is 77 and nothing is exchanged). Core code never prints or
prompts: the CLI passes the callbacks that open a browser, show a URL or a code, and
read a pasted line.

The browser flow serves the callback from a thread, so `open_url` may block (a
terminal browser, or a test that follows the redirect itself) while the answer comes
in; the main thread waits for it at most `timeout` seconds (75 when nobody comes back).
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailcli.auth.oauth.providers import Provider, require_secure_url
from mailcli.auth.oauth.tokens import (
    Client,
    OAuthError,
    TokenSet,
    exchange_code,
    post_form,
    token_set,
)
from mailcli.errors import (
    DataError,
    PermissionDeniedError,
    ProtocolError,
    TempFailError,
    UsageError,
)

LISTEN_HOST = "127.0.0.1"
# The paste flow's redirect goes to a random high port on the browser's machine, where
# nothing listens: the page fails to load and its address (with the code) stays in view.
PASTE_PORTS = (49152, 65535)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5: each slow_down adds 5 seconds to the interval
_LONGEST = 1e300  # a device grant's time beyond this (an int past float's range) is this
_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>mailcli</title></head>"
    "<body><h1>mailcli: {0}</h1><p>You can close this window and return to the "
    "terminal.</p></body></html>"
)
GOOGLE_NO_DEVICE = (
    "Google does not allow the device flow for mail: its device endpoint refuses the "
    "scope https://mail.google.com/ (invalid_scope)"
)
GOOGLE_NO_DEVICE_HINT = (
    "use the browser flow; on a headless host forward a port with "
    "`ssh -L PORT:127.0.0.1:PORT` and run `mailcli oauth login --port PORT`, or use --paste"
)


def new_verifier() -> str:
    """A PKCE code verifier: 43 characters of the unreserved alphabet (256 bits)."""
    return secrets.token_urlsafe(32)


def challenge_of(verifier: str) -> str:
    """S256: base64url(SHA-256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    provider: Provider, client: Client, redirect_uri: str, state: str, verifier: str
) -> str:
    """The URL the user opens: the authorize endpoint with our query added to its own."""
    require_secure_url(provider.authorize_url, "authorize_url")
    parts = urlsplit(provider.authorize_url)
    query = [
        *parse_qsl(parts.query),
        ("response_type", "code"),
        ("client_id", client.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", " ".join(provider.scopes)),
        ("state", state),
        ("code_challenge", challenge_of(verifier)),
        ("code_challenge_method", "S256"),
        *provider.extra_authorize,
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect_uri_for(provider: Provider, port: int) -> str:
    """Microsoft registers http://localhost (any port matches); the others 127.0.0.1."""
    host = "localhost" if provider.name == "microsoft" else LISTEN_HOST
    return f"http://{host}:{port}/"


def code_from(answer: dict[str, str], state: str, provider: Provider) -> str:
    """The code of an authorization answer, after checking its state and error."""
    if not secrets.compare_digest(answer.get("state", ""), state):
        raise PermissionDeniedError(
            "the authorization answer's state does not match this login "
            "(a stale or forged redirect); nothing was exchanged",
            hint="run `mailcli oauth login` again and finish it in the browser it opens",
        )
    error = answer.get("error")
    if error is not None:
        detail = "".join(c if c.isprintable() else " " for c in error)[:64]
        raise PermissionDeniedError(
            f"{provider.name} refused the authorization ({detail})",
            hint="access_denied means the consent was declined or the account may not use "
            "this app (a Google app in Testing admits only its test users)",
        )
    code = answer.get("code")
    if not code:
        raise PermissionDeniedError("the authorization answer carries no code")
    return code


class _CallbackServer(HTTPServer):
    """Serves the one authorization answer; keeps the first one that arrives."""

    answer: dict[str, str] | None = None
    answered: threading.Event

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: its getfqdn asks DNS
        self.server_name, self.server_port = LISTEN_HOST, self.server_address[1]


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # a client that connects and sends nothing must not hold the listener

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        answer = dict(parse_qsl(parts.query))
        if parts.path != "/" or not ({"code", "error"} & answer.keys()):
            self._reply(404, "nothing here")
            return
        if self.server.answered.is_set():
            self._reply(409, "this login was already answered")
            return
        self.server.answer = answer
        self.server.answered.set()
        self._reply(200, "login refused" if "error" in answer else "answer received")

    def _reply(self, status: int, title: str) -> None:
        page = _PAGE.format(title).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: core code never writes to the terminal, and the path holds the code."""


def _listen(port: int | None) -> _CallbackServer:
    try:
        server = _CallbackServer((LISTEN_HOST, port or 0), _CallbackHandler)
    except OSError as failed:
        raise TempFailError(
            f"cannot listen on {LISTEN_HOST}:{port or 0} for the browser's answer: "
            f"{failed.strerror or failed}",
            hint="choose another port with --port",
        ) from failed
    server.answered = threading.Event()
    # A ready listener can be empty again by the time serve_forever accepts (seen in
    # the tests: a blocking accept() then never returned, and shutdown() waited for it
    # forever). Non-blocking, such an accept fails and the loop goes on.
    server.socket.setblocking(False)
    return server


def browser_login(
    provider: Provider,
    client: Client,
    *,
    port: int | None,
    open_url: Callable[[str], bool],
    show_url: Callable[[str], None],
    timeout: float = 300.0,
) -> TokenSet:
    """Log in in a browser: listen on 127.0.0.1, send the user to the provider, take the
    one answer it redirects back, check its state, exchange the code (PKCE S256)."""
    state, verifier = secrets.token_urlsafe(24), new_verifier()
    server = _listen(port)
    serving = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    serving.start()
    try:
        redirect_uri = redirect_uri_for(provider, server.server_address[1])
        url = authorization_url(provider, client, redirect_uri, state, verifier)
        if not open_url(url):
            show_url(url)
        if not server.answered.wait(timeout):
            raise TempFailError(
                f"no answer from the browser within {timeout:.0f} s",
                hint="run `mailcli oauth login` again and finish the login in the browser",
            )
    finally:
        server.shutdown()
        server.server_close()
        serving.join()
    code = code_from(server.answer or {}, state, provider)
    return exchange_code(provider, client, code, verifier, redirect_uri)


def paste_login(
    provider: Provider,
    client: Client,
    *,
    show_url: Callable[[str], None],
    read_redirect: Callable[[], str],
) -> TokenSet:
    """Log in with no listener: the browser's redirect fails to load, and the user pastes
    the address it shows; its state is checked and its code exchanged."""
    state, verifier = secrets.token_urlsafe(24), new_verifier()
    low, high = PASTE_PORTS
    redirect_uri = redirect_uri_for(provider, low + secrets.randbelow(high - low + 1))
    show_url(authorization_url(provider, client, redirect_uri, state, verifier))
    answer = _pasted_answer(read_redirect().strip(), redirect_uri)
    code = code_from(answer, state, provider)
    return exchange_code(provider, client, code, verifier, redirect_uri)


def _pasted_answer(pasted: str, redirect_uri: str) -> dict[str, str]:
    """The query of the pasted redirect; DataError (65) when it is not ours. The message
    never repeats the pasted text: it carries the code."""
    expected, given = urlsplit(redirect_uri), urlsplit(pasted)
    try:
        same = (given.scheme, given.hostname, given.port, given.path or "/") == (
            expected.scheme,
            expected.hostname,
            expected.port,
            expected.path,
        )
    except ValueError:  # a port that is not a number
        same = False
    answer = dict(parse_qsl(given.query))
    if not same or not ({"code", "error"} & answer.keys()):
        raise DataError(
            f"the pasted text is not the redirect to {redirect_uri} with a code; copy the "
            "whole address from the browser's address bar"
        )
    return answer


def device_login(
    provider: Provider,
    client: Client,
    *,
    show_code: Callable[[str, str], None],
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 900.0,
) -> TokenSet:
    """Log in on another device (RFC 8628): show the verification URL and user code,
    poll the token endpoint every `interval` seconds (+5 s after each slow_down)."""
    if provider.device_url is None or not provider.device_allowed:
        if provider.name == "google":
            raise UsageError(GOOGLE_NO_DEVICE, hint=GOOGLE_NO_DEVICE_HINT)
        raise UsageError(
            f"the {provider.name} provider has no device authorization URL",
            hint="set device_url in the account's oauth2 table, or use --browser or --paste",
        )
    fields = {"client_id": client.client_id, "scope": " ".join(provider.scopes)}
    grant = post_form(
        provider, provider.device_url, fields, timeout=30.0, what="the device authorization"
    )
    device_code, interval, expires_in = _device_grant(grant, show_code)
    return _poll_device(provider, client, device_code, interval, min(timeout, expires_in), sleep)


def _device_grant(
    grant: dict[str, object], show_code: Callable[[str, str], None]
) -> tuple[str, float, float]:
    """Show the code; the device code, polling interval and lifetime of the grant."""

    device_code, user_code = grant.get("device_code"), grant.get("user_code")
    # Google's older endpoint says verification_url; RFC 8628 verification_uri.
    verify = grant.get("verification_uri") or grant.get("verification_url")
    if not (isinstance(device_code, str) and isinstance(user_code, str)):
        raise ProtocolError("the device authorization answer has no device_code/user_code")
    if not isinstance(verify, str):
        raise ProtocolError("the device authorization answer has no verification_uri")
    interval = _grant_seconds(grant.get("interval", 5), "interval")
    expires_in = _grant_seconds(grant.get("expires_in", 900), "expires_in")
    if interval > expires_in:  # not one poll before the code expires
        raise ProtocolError("the device authorization answer's interval is past its expires_in")
    show_code(verify, user_code)
    return device_code, max(interval, 1.0), expires_in


def _grant_seconds(value: object, name: str) -> float:
    """A device grant's `interval` or `expires_in`; 76 when it is no number."""
    # bool is an int; NaN fails every comparison, even with inf.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value <= math.inf:
        raise ProtocolError(f"the device authorization answer's {name} is not a number")
    return float(min(value, _LONGEST))


def _poll_device(
    provider: Provider,
    client: Client,
    device_code: str,
    interval: float,
    limit: float,
    sleep: Callable[[float], None],
) -> TokenSet:
    fields = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    fields["client_id"] = client.client_id
    if client.client_secret:
        fields["client_secret"] = client.client_secret
    waited = 0.0  # counted from the sleeps asked for, so an injected sleep bounds it too
    while waited + interval <= limit:
        sleep(interval)
        waited += interval
        try:
            answer = post_form(
                provider, provider.token_url, fields, timeout=30.0, what="the device code"
            )
        except OAuthError as refused:
            interval += _next_step(refused)
            continue
        return token_set(answer)
    raise TempFailError(
        f"nobody entered the code within {limit:.0f} s",
        hint="run `mailcli oauth login --device` again and enter the new code",
    )


def _next_step(refused: OAuthError) -> float:
    """How much longer to wait after a polling answer; raises when polling must stop."""
    if refused.error == "authorization_pending":
        return 0.0
    if refused.error == "slow_down":
        return SLOW_DOWN_STEP
    if refused.error == "expired_token":
        raise TempFailError(
            "the device code expired before the login was finished",
            hint="run `mailcli oauth login --device` again and enter the new code",
        ) from refused
    if refused.error in ("access_denied", "authorization_declined"):
        raise PermissionDeniedError(
            "the login on the other device was declined (access_denied)"
        ) from refused
    raise refused
