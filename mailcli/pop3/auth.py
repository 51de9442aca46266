"""POP3 logins: USER/PASS, APOP, SASL (RFC 5034) with a password, and OAuth2 bearer tokens.

`authenticate` is every POP3 login; the session calls it once, with itself as the
`Pop3Channel`: its guarded `send`/`read_reply` (poplib has no AUTH, and every line goes
through the session's one error translation), the greeting, CAPA, the endpoint and
whether the connection is inside TLS. This module never imports the session.

With a password: the forced method (--auth user, apop, plain, scram-sha-256,
scram-sha-1 or xoauth2, the last with the password as the token) or, unforced, SASL
PLAIN when the connection is inside TLS and CAPA offers it, else SCRAM-SHA-256 or
SCRAM-SHA-1 when CAPA offers it (no password crosses the wire, and the server proves
it knows it), else USER/PASS. A refusal is 77 (`-ERR [SYS/TEMP]` and the like: 75).

SCRAM (`auth.scram`): `AUTH M <client-first>`, client-final answering the first `+`,
an empty line answering the second (the server's signature, verified first), then
`+OK`. A wrong signature, `+OK` before one, or any fault the client finds ends the
login there: the error propagates with nothing more sent, and the session closes the
connection without QUIT.

EXTERNAL (`--auth external`): `AUTH EXTERNAL =`, the identity the TLS client
certificate proves; only when CAPA's SASL offers it (69), only with a client certificate
(78), no password looked up and no user needed; a refusal is 77.

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
import binascii
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
    external,
    initial_response,
    is_external,
    not_offered,
    plain,
    retry_once,
    wants_two_step,
    xoauth2,
)
from mailcli.auth.scram import SCRAM_MECHANISMS, ScramClient, is_scram
from mailcli.endpoint import Endpoint, missing_user
from mailcli.errors import (
    ConfigError,
    MailcliError,
    PermissionDeniedError,
    ProtocolError,
    UnavailableError,
)
from mailcli.network import reply_text
from mailcli.pop3.wire import NegativeReply, error_from_pop3_reply

AUTH_METHODS = ("user", "apop", "plain", "scram-sha-256", "scram-sha-1", "xoauth2", "external")
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
    if is_external(endpoint.auth):
        _external_login(channel)
        return
    if not endpoint.user:
        raise missing_user(endpoint)
    login_with(
        credential,
        password=lambda password: _password_login(channel, password),
        bearer=lambda source: bearer_login(channel, source),
    )


def _external_login(channel: Pop3Channel) -> None:
    mechanisms = [m.upper() for m in channel.capabilities.get("SASL", [])]
    if "EXTERNAL" not in mechanisms:
        raise not_offered("EXTERNAL", mechanisms)
    if not channel.endpoint.client_cert:
        raise ConfigError(
            "--auth external logs in with a TLS client certificate, and none is given",
            hint="give --client-cert (key client_cert)",
        )
    channel.send(f"AUTH EXTERNAL {initial_response(external())}")
    reply = channel.read_reply()
    if _continues(reply):  # a server that wants the (empty) identity after all
        channel.send("")
        reply = channel.read_reply()
    if not reply.startswith(b"+OK"):
        raise error_from_pop3_reply(
            poplib.error_proto(reply),
            default=PermissionDeniedError(
                "the server refused AUTH EXTERNAL (the client certificate)",
                hint="check that the server trusts the certificate and maps it to a user",
            ),
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
        elif is_scram(method):
            _scram(channel, ScramClient(method, endpoint.user or "", secret))
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
    mechanisms = [m.upper() for m in channel.capabilities.get("SASL", [])]
    if is_scram(forced) and mechanisms and forced.upper() not in mechanisms:
        raise not_offered(forced.upper(), mechanisms)
    if forced:
        return forced
    if channel.tls_active and "PLAIN" in mechanisms:
        return "plain"
    return next((m.lower() for m in SCRAM_MECHANISMS if m in mechanisms), "user")


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


def _scram(channel: Pop3Channel, client: ScramClient) -> None:
    """One SCRAM exchange; its client raises on a fourth message, which bounds the loop."""
    channel.send(f"AUTH {client.mechanism} {_encoded(client.respond(None))}")
    reply = channel.read_reply()
    while _continues(reply):
        channel.send(_encoded(client.respond(_challenge(reply))))
        reply = channel.read_reply()
    if not reply.startswith(b"+OK"):
        raise poplib.error_proto(reply)
    client.require_verified()


def _challenge(reply: bytes) -> bytes:
    try:
        return base64.b64decode(reply[1:].strip(), validate=True)
    except binascii.Error:
        raise ProtocolError("the server's AUTH challenge (+) is not base64") from None


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
