"""POP3 logins: USER/PASS, APOP, SASL (RFC 5034) with a password, and OAuth2 bearer tokens.

`authenticate` is every POP3 login; the session calls it once, with itself as the
`Pop3Channel`: its guarded `send`/`read_reply` (poplib has no AUTH, and every line goes
through the session's one error translation), the greeting, CAPA, the endpoint and
whether the connection is inside TLS. This module never imports the session.

With a password: the forced method (--auth user, apop, plain or xoauth2, the last with
the password as the token) or, unforced, SASL PLAIN when the connection is inside TLS and
CAPA offers it, else USER/PASS. A refusal is 77 (`-ERR [SYS/TEMP]` and the like: 75).

With a `BearerSource`: the mechanism is `choose_bearer_mechanism` over CAPA's SASL list.
Two forms:
- initial response: `AUTH M <base64>` (RFC 5034 allows it; the default);
- two-step: `AUTH M`, the server's `+ `, then `<base64>`: for Microsoft, whose POP3
  takes only this form, and any source whose `two_step` asks for it.
A refused token comes back as `+ <base64 JSON>`; the client answers it (`error_answer`),
reads the final `-ERR`, and, still in the AUTHORIZATION state, renews the token once and
tries once more on the same connection (`retry_once`). `-ERR [SYS/TEMP]` (and
`[IN-USE]`, `[LOGIN-DELAY]`) is temporary: 75, no retry.
"""

from __future__ import annotations

import base64
import poplib
import re
from typing import Protocol

from mailcli.auth.credential import BearerSource, Credential, Password, login_with
from mailcli.auth.sasl import (
    apop,
    bearer_payload,
    choose_bearer_mechanism,
    error_answer,
    error_detail,
    plain,
    retry_once,
    wants_two_step,
    xoauth2,
)
from mailcli.endpoint import Endpoint, missing_user
from mailcli.errors import MailcliError, PermissionDeniedError, UnavailableError
from mailcli.network import reply_text
from mailcli.pop3.wire import NegativeReply, error_from_pop3_reply

AUTH_METHODS = ("user", "apop", "plain", "xoauth2")
_APOP_TIMESTAMP = rb"\+OK.[^<]*(<.*>)"  # the greeting's <timestamp>, as poplib finds it


class Pop3Channel(Protocol):
    """What a login needs of the session (`Pop3Session` is one)."""

    @property
    def endpoint(self) -> Endpoint: ...
    @property
    def welcome(self) -> bytes: ...
    @property
    def capabilities(self) -> dict[str, list[str]]: ...
    @property
    def tls_active(self) -> bool: ...
    def send(self, *lines: str) -> None: ...
    def read_reply(self) -> bytes: ...


def authenticate(channel: Pop3Channel, credential: Credential) -> None:
    """Log in as the endpoint's user: 77 when refused (a token: after one renewal), 75
    when the server says try later, 69 for a method it does not offer."""
    endpoint = channel.endpoint
    if not endpoint.user:
        raise missing_user(endpoint)
    login_with(
        credential,
        password=lambda password: _password_login(channel, password),
        bearer=lambda source: bearer_login(channel, source),
    )


def _password_login(channel: Pop3Channel, password: Password) -> None:
    endpoint = channel.endpoint
    method = _auth_method(channel)
    secret = password.secret()
    try:
        if method == "user":
            _command(channel, f"USER {endpoint.user}")
            _command(channel, f"PASS {secret}")
        elif method == "apop":
            _command(channel, f"APOP {endpoint.user} {apop(_timestamp(channel), secret)}")
        else:
            _sasl(channel, method, secret)
    except poplib.error_proto as exc:
        raise error_from_pop3_reply(exc, default=_auth_failed(endpoint.user)) from None


def _auth_method(channel: Pop3Channel) -> str:
    forced = (channel.endpoint.auth or "").lower()
    if forced and forced not in AUTH_METHODS:
        raise UnavailableError(
            f"unknown POP3 --auth {forced!r}; use one of {', '.join(AUTH_METHODS)}"
        )
    if forced == "apop" and b"<" not in channel.welcome:
        raise UnavailableError("the server does not offer APOP (no timestamp in its banner)")
    if forced:
        return forced
    mechanisms = [m.upper() for m in channel.capabilities.get("SASL", [])]
    return "plain" if channel.tls_active and "PLAIN" in mechanisms else "user"


def _command(channel: Pop3Channel, line: str) -> None:
    """A login command; any reply but a `+` one raises poplib.error_proto."""
    channel.send(line)
    reply = channel.read_reply()
    if not reply.startswith(b"+"):
        raise poplib.error_proto(reply)


def _timestamp(channel: Pop3Channel) -> bytes:
    match = re.match(_APOP_TIMESTAMP, channel.welcome)
    if not match:
        raise poplib.error_proto("-ERR APOP not supported by server")
    return match.group(1)


def _sasl(channel: Pop3Channel, method: str, secret: str) -> None:
    """SASL PLAIN, or XOAUTH2 with the password as the token."""
    user = channel.endpoint.user or ""
    mechanism = method.upper()
    payload = plain(user, secret) if mechanism == "PLAIN" else xoauth2(user, secret)
    reply, _ = _exchange(channel, mechanism, payload)
    if not reply.startswith(b"+OK"):
        raise poplib.error_proto(reply)


def _auth_failed(user: str | None) -> MailcliError:
    return PermissionDeniedError(
        f"authentication as {user!r} failed",
        hint="check the user and the password source (`mailcli password where`)",
    )


def bearer_login(channel: Pop3Channel, source: BearerSource) -> None:
    """Log in with an OAuth2 token; 77 when refused after one renewal."""
    endpoint = channel.endpoint
    user = endpoint.user or ""
    offered = channel.capabilities.get("SASL", [])
    mechanism = choose_bearer_mechanism(offered, endpoint.auth, source.provider)
    two_step = wants_two_step(source, "pop3")

    def attempt(token: str) -> str | None:
        payload = bearer_payload(mechanism, user, token, endpoint.host, endpoint.port)
        reply, challenge = _exchange(channel, mechanism, payload, two_step=two_step)
        return _refusal_detail(reply, None if challenge is None else error_detail(challenge))

    retry_once(source, user, attempt)


def _exchange(
    channel: Pop3Channel, mechanism: str, response: bytes, *, two_step: bool = False
) -> tuple[bytes, bytes | None]:
    """One AUTH carrying `response`: the server's final reply, and the error challenge
    it sent before that (answered with the mechanism's `error_answer`), if any."""
    if two_step:
        channel.send(f"AUTH {mechanism}")
        reply = channel.read_reply()
        if not _continues(reply):  # refused before any token was sent: not the token's fault
            raise error_from_pop3_reply(poplib.error_proto(reply))
        channel.send(_encoded(response))
    else:
        channel.send(f"AUTH {mechanism} {_encoded(response)}")
    reply = channel.read_reply()
    challenge = None
    if _continues(reply):  # an error challenge: answer it, then read the final -ERR
        challenge = reply[1:].strip()
        channel.send(_encoded(error_answer(mechanism)))
        reply = channel.read_reply()
    return reply, challenge


def _refusal_detail(reply: bytes, detail: str | None) -> str | None:
    """None for +OK; for a refused token the error challenge's detail (or the -ERR);
    anything else raises (temporary: 75; a second challenge: 76)."""
    if reply.startswith(b"+OK"):
        return None
    error = error_from_pop3_reply(poplib.error_proto(reply))
    if isinstance(error, (PermissionDeniedError, NegativeReply)):
        return detail or reply_text(reply)
    raise error


def _continues(reply: bytes) -> bool:
    return reply == b"+" or reply.startswith(b"+ ")


def _encoded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
