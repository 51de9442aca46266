"""A small OAuth2 authorization server on 127.0.0.1, in a thread, for the OAuth tests.

Endpoints (RFC 6749, 7636, 8628, 7662, 7009):
- GET  /authorize    auto-approves (or denies, `deny = True`) and redirects to the
                     redirect_uri with code and state; only PKCE S256 is accepted;
- POST /token        authorization_code (checks the PKCE verifier), refresh_token
                     (rotation on by default: the old refresh token is then invalid_grant),
                     device_code (answers `device_sequence` first, then tokens);
- POST /device/code  a device grant;
- POST /introspect   {"active", "email", "sub", "exp"} for the access tokens it issued
                     (Dovecot's `introspection_mode = post`);
- POST /revoke       forgets a token.
Access tokens are HS256 JWTs from `tests.servers.jwt.mint(key, email, lifetime=...)`, so a
Dovecot holding the same key validates them locally.

Knobs: `access_lifetime`, `reported_lifetime` (the `expires_in` /token reports, when it
should differ from the JWT's real lifetime: e.g. 1e-9 makes every later run find its
cached token due for refresh while Dovecot still accepts it), `rotation`,
`device_sequence`, `device_interval`, `deny`, `token_status` (answer /token with this
HTTP status, e.g. 503), `token_answer` ((status, body): /token answers exactly these
bytes as JSON whatever it is asked: a broken or hostile endpoint), `device_answer`
(fields that replace those of /device/code's answer), `client_secret` (when
set, /token and /revoke answer invalid_client, 401, to a request without that secret: a
confidential client), `email`, `revoke_refresh_tokens()`, `requests` (a Counter per
path), `stop()` (unreachable after), `resume()` (back on the same port).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import jwt
from .ports import HOST

CLIENT_ID = "mailcli-test-client"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class OAuthFailure(Exception):
    """An OAuth error answer: 400 with {"error": ...}."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


class AuthServer:
    """The server and its state; `url(path)` is where an endpoint listens."""

    def __init__(self, key: bytes | None = None, *, email: str = "alice@example.test") -> None:
        self.key = jwt.new_key() if key is None else key
        self.email = email
        self.client_id = CLIENT_ID
        self.access_lifetime = 3600.0
        self.reported_lifetime: float | None = None  # None: access_lifetime
        self.rotation = True
        self.device_sequence: tuple[str, ...] = ("authorization_pending", "slow_down")
        self.device_interval = 5
        self.deny = False
        self.token_status: int | None = None
        self.token_answer: tuple[int, bytes] | None = None
        self.device_answer: dict[str, Any] = {}
        self.client_secret: str | None = None
        self.requests: Counter[str] = Counter()
        self.authorize_queries: list[dict[str, str]] = []
        self.issued: list[str] = []  # every code, token and device code handed out
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, str]] = {}
        self._refresh: set[str] = set()
        self._access: dict[str, float] = {}
        self._devices: dict[str, list[str]] = {}
        self.port = 0
        self._listen()

    def _listen(self) -> None:
        self._http = _HTTPServer((HOST, self.port), _Handler)
        self._http.auth = self
        # Never block in accept(): a ready listener can be empty again by then, and a
        # blocked accept() made stop() wait forever (seen once under load).
        self._http.socket.setblocking(False)
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.port = self._http.server_address[1]
        self._running = True

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def stop(self) -> None:
        """Stop listening: the endpoints become unreachable (connection refused)."""
        if self._running:
            self._running = False
            self._http.shutdown()
            self._http.server_close()
            self._thread.join()

    def resume(self) -> None:
        """Listen again, on the same port and with the same state, after `stop()`."""
        if not self._running:
            self._listen()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh.clear()

    def _new(self, prefix: str) -> str:
        value = f"{prefix}-{secrets.token_urlsafe(24)}"
        self.issued.append(value)
        return value

    # -- endpoints ----------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> str:
        """Where /authorize redirects (the Location)."""
        self.authorize_queries.append(query)
        redirect, state = query.get("redirect_uri", ""), query.get("state", "")
        if self.deny:
            return _add_query(redirect, error="access_denied", state=state)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return _add_query(redirect, error="invalid_request", state=state)
        code = self._new("code")
        with self._lock:
            self._codes[code] = query
        return _add_query(redirect, code=code, state=state)

    def _check_client(self, form: dict[str, str]) -> None:
        if form.get("client_id") != self.client_id:
            raise OAuthFailure("invalid_client", "unknown client", status=401)
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            raise OAuthFailure("invalid_client", "client secret missing or wrong", status=401)

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        self._check_client(form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        if grant == DEVICE_GRANT:
            return self._device_grant(form)
        raise OAuthFailure("unsupported_grant_type")

    def _code_grant(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            asked = self._codes.pop(form.get("code", ""), None)
        if asked is None:
            raise OAuthFailure("invalid_grant", "unknown or used authorization code")
        if asked.get("redirect_uri") != form.get("redirect_uri"):
            raise OAuthFailure("invalid_grant", "redirect_uri differs from the authorization")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != asked["code_challenge"]:
            raise OAuthFailure("invalid_grant", "PKCE verification failed")
        return self._tokens(with_refresh=True)

    def _refresh_grant(self, form: dict[str, str]) -> dict[str, Any]:
        old = form.get("refresh_token", "")
        with self._lock:
            if old not in self._refresh:
                raise OAuthFailure("invalid_grant", "refresh token expired or revoked")
            if self.rotation:
                self._refresh.discard(old)
        return self._tokens(with_refresh=self.rotation)

    def _device_grant(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            remaining = self._devices.get(form.get("device_code", ""))
            if remaining is None:
                raise OAuthFailure("invalid_grant", "unknown device code")
            if remaining:
                raise OAuthFailure(remaining.pop(0))
            del self._devices[form["device_code"]]
        return self._tokens(with_refresh=True)

    def device_code(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("client_id") != self.client_id:
            raise OAuthFailure("invalid_client", "unknown client", status=401)
        device_code = self._new("device")
        with self._lock:
            self._devices[device_code] = list(self.device_sequence)
        return {
            "device_code": device_code,
            "user_code": "WDJB-MJHT",
            "verification_uri": self.url("/device"),
            "expires_in": 900,
            "interval": self.device_interval,
            **self.device_answer,
        }

    def _tokens(self, *, with_refresh: bool) -> dict[str, Any]:
        access = jwt.mint(self.key, self.email, lifetime=self.access_lifetime)
        self.issued.append(access)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": (
                int(self.access_lifetime)
                if self.reported_lifetime is None
                else self.reported_lifetime
            ),
            "scope": "mail",
            "id_token": jwt.mint(self.key, self.email, lifetime=300),
        }
        with self._lock:
            self._access[access] = time.time() + self.access_lifetime
            if with_refresh:
                answer["refresh_token"] = refresh = self._new("refresh")
                self._refresh.add(refresh)
        return answer

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("token", "")
        with self._lock:
            expires = self._access.get(token)
        if expires is None or expires <= time.time():
            return {"active": False}
        return {"active": True, "email": self.email, "sub": self.email, "exp": int(expires)}

    def revoke(self, form: dict[str, str]) -> dict[str, Any]:
        self._check_client(form)
        token = form.get("token", "")
        with self._lock:
            self._refresh.discard(token)
            self._access.pop(token, None)
        return {}


def _add_query(url: str, **fields: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), *fields.items()]
    return parts._replace(query=urlencode(query)).geturl()


class _HTTPServer(ThreadingHTTPServer):
    auth: AuthServer
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        auth, parts = self.server.auth, urlsplit(self.path)
        auth.requests[parts.path] += 1
        query = dict(parse_qsl(parts.query))
        if parts.path == "/authorize":
            self._send(302, b"", location=auth.authorize(query))
        elif parts.path == "/introspect":  # introspection_mode = get or auth
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
            self._json(200, auth.introspect({"token": query.get("token", bearer)}))
        else:
            self._send(404, b"not found")

    def do_POST(self) -> None:
        auth, path = self.server.auth, urlsplit(self.path).path
        auth.requests[path] += 1
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        endpoint = {
            "/token": auth.token,
            "/device/code": auth.device_code,
            "/introspect": auth.introspect,
            "/revoke": auth.revoke,
        }.get(path)
        if endpoint is None:
            self._send(404, b"not found")
        elif path == "/token" and auth.token_status is not None:
            self._send(auth.token_status, b"<html>unavailable</html>")
        elif path == "/token" and auth.token_answer is not None:
            self._send(*auth.token_answer, kind="application/json")
        else:
            try:
                self._json(200, endpoint(form))
            except OAuthFailure as failure:
                body = {"error": failure.error, "error_description": failure.description}
                self._json(failure.status, body)

    def _json(self, status: int, document: dict[str, Any]) -> None:
        self._send(status, json.dumps(document).encode(), kind="application/json")

    def _send(
        self, status: int, body: bytes, *, kind: str = "text/html", location: str = ""
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
