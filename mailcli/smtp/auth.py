"""SMTP AUTH (RFC 4954) for the submission session: passwords and OAuth2 bearer tokens.

With a `Password`: the forced mechanism (--auth), else the first offered one of an
order that depends on TLS. Inside TLS: PLAIN (its initial response makes the login one
round trip), SCRAM-SHA-256, SCRAM-SHA-1 (two round trips, but the server proves it
knows the password), LOGIN, then CRAM-MD5 only when nothing else is offered (two round
trips, and it makes the server keep a plaintext-equivalent password). In clear:
SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5 first, so that no password crosses the wire when
one is offered, then PLAIN, LOGIN. XOAUTH2 only when forced, with the password source's
value as the token (a token printed by a password_command).

SCRAM (`auth.scram`): client-first as the initial response, client-final answering the
first 334, an empty line answering the second (the server's signature, verified first).
A signature that is wrong, missing when 235 arrives, or any other fault the client
finds mid-exchange ends the session at once: the connection is closed with nothing
more sent (no `*`, no QUIT), the error's own status (77 for the signature).

EXTERNAL (`--auth external`, `auth = "external"`): `AUTH EXTERNAL =`, the identity the
TLS client certificate proves (the user, if any, is not sent); only when asked and
offered (69 otherwise), only with a client certificate (78), no password looked up; a
refusal is 77.

With a `BearerSource` (an account with OAuth2): XOAUTH2 or OAUTHBEARER
(`choose_bearer_mechanism`), the token as the initial response (`AUTH M <base64>`), or in
the two-step form when the source asks for it. A refused token comes back as 334 with
a base64 JSON error challenge, which is answered (`error_answer`) before the final 535;
then the token is renewed once and AUTH tried once more on the same connection
(`retry_once`). A 4xx reply to AUTH is temporary (75) and is not retried.

Every response is built by `auth.sasl`; this module only frames it (`_exchange`: the AUTH
line, the 334 continuations), in base64 of the UTF-8 bytes RFC 4616 asks for. smtplib's
own `auth()` is not used: it encodes every response as ASCII, so a non-ASCII password or
user name could not be sent.
"""

from __future__ import annotations

import base64
import binascii
import smtplib
from collections.abc import Callable
from typing import overload

from mailcli.auth import sasl
from mailcli.auth.credential import BearerSource, Credential, Password, login_with
from mailcli.auth.sasl import (
    EXTERNAL,
    XOAUTH2,
    bearer_payload,
    choose_bearer_mechanism,
    cram_md5,
    error_answer,
    error_detail,
    external,
    is_external,
    login,
    not_offered,
    plain,
    retry_once,
    wants_two_step,
    xoauth2,
)
from mailcli.auth.scram import SCRAM_MECHANISMS, ScramClient, is_scram
from mailcli.endpoint import Endpoint
from mailcli.errors import (
    ConfigError,
    MailcliError,
    PermissionDeniedError,
    ProtocolError,
    TempFailError,
    UnavailableError,
)
from mailcli.network import reply_text
from mailcli.smtp.reply import Reply
from mailcli.smtp.wire import TracedSMTP, close_quietly

# First offered wins. XOAUTH2 only when asked for (--auth xoauth2) or with OAuth2.
AUTH_PREFERENCE_TLS = ("PLAIN", *SCRAM_MECHANISMS, "LOGIN", "CRAM-MD5")
AUTH_PREFERENCE_CLEAR = (*SCRAM_MECHANISMS, "CRAM-MD5", "PLAIN", "LOGIN")
# More continuations than any mechanism we speak needs: the server is looping.
_MAX_CHALLENGES = 5


def authenticate(smtp: TracedSMTP, endpoint: Endpoint, credential: Credential) -> None:
    """AUTH as `endpoint.user`; raises 77 when refused, 75 when temporarily impossible,
    69 when no usable mechanism is offered."""
    if is_external(endpoint.auth):
        _external_login(smtp, endpoint)
        return
    login_with(
        credential,
        password=lambda password: _password_login(smtp, endpoint, password),
        bearer=lambda source: _bearer_login(smtp, endpoint, source),
    )


def _password_login(smtp: TracedSMTP, endpoint: Endpoint, password: Password) -> None:
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = choose_mechanism(offered, endpoint.auth, tls=smtp.tls_active)
    responder = _password_responder(mechanism, endpoint.user or "", password.secret())
    try:
        _exchange(smtp, mechanism, responder, initial_response=True)
        if isinstance(responder, ScramClient):
            responder.require_verified()
    except MailcliError:
        close_quietly(smtp)  # out of step, or the server is not who it claims: say nothing more
        raise
    except smtplib.SMTPAuthenticationError as exc:
        reply = _temporary_or(exc)
        raise PermissionDeniedError(
            f"authentication as {endpoint.user!r} failed: {reply}",
            hint="check the user and the password source (`mailcli password where`)",
        ) from None


def _external_login(smtp: TracedSMTP, endpoint: Endpoint) -> None:
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    if EXTERNAL not in offered:
        raise not_offered(EXTERNAL, offered)
    if not endpoint.client_cert:
        raise ConfigError(
            "--auth external logs in with a TLS client certificate, and none is given",
            hint="give --client-cert (key client_cert)",
        )
    try:
        _exchange(smtp, EXTERNAL, lambda _challenge: external(), initial_response=True)
    except smtplib.SMTPAuthenticationError as exc:
        raise PermissionDeniedError(
            f"the server refused AUTH EXTERNAL (the client certificate): {_temporary_or(exc)}",
            hint="check that the server trusts the certificate and maps it to a user",
        ) from None


def choose_mechanism(offered: list[str], forced: str | None, *, tls: bool) -> str:
    """The forced mechanism when offered, else the first offered one of the order for
    a connection inside TLS or in clear (the module's docstring says why)."""
    if not offered:
        raise UnavailableError(
            "the server offers no AUTH",
            hint="drop --user (and the account's user) to send without authentication",
        )
    if forced:
        mechanism = forced.upper()
        if mechanism not in offered:
            raise not_offered(mechanism, offered)
        if mechanism not in (*AUTH_PREFERENCE_TLS, XOAUTH2):
            raise UnavailableError(f"mailcli does not speak AUTH {mechanism}")
        return mechanism
    for mechanism in AUTH_PREFERENCE_TLS if tls else AUTH_PREFERENCE_CLEAR:
        if mechanism in offered:
            return mechanism
    raise UnavailableError(f"no supported AUTH mechanism among {' '.join(offered)}")


def _password_responder(
    mechanism: str, user: str, secret: str
) -> _PasswordResponder | _TokenResponder | ScramClient:
    if mechanism == XOAUTH2:  # a token printed by a password_command
        return _TokenResponder(XOAUTH2, xoauth2(user, secret))
    if is_scram(mechanism):
        return ScramClient(mechanism, user, secret)
    return _PasswordResponder(mechanism, user, secret)


def _exchange(
    smtp: TracedSMTP,
    mechanism: str,
    respond: Callable[[bytes | None], bytes | None],
    *,
    initial_response: bool,
) -> None:
    """One AUTH: `respond(None)` is the initial response (None: the two-step form), then
    `respond(challenge)` answers each 334 (its text decoded from base64). 235 (and 503,
    already authenticated, as smtplib takes it) is success; any other reply raises
    SMTPAuthenticationError."""
    first = respond(None) if initial_response else None
    line = mechanism if first is None else f"{mechanism} {sasl.initial_response(first)}"
    code, reply = smtp.docmd("AUTH", line)
    for _ in range(_MAX_CHALLENGES):
        if code != 334:
            break
        code, reply = smtp.docmd(_base64(respond(_challenge(reply)) or b""))
    else:
        raise smtplib.SMTPException(f"the server keeps answering AUTH with 334: {reply!r}")
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)


def _challenge(reply: bytes) -> bytes:
    try:
        return base64.decodebytes(reply)
    except binascii.Error:
        raise ProtocolError("the server's AUTH challenge (334) is not base64") from None


def _base64(response: bytes) -> str:
    return base64.b64encode(response).decode("ascii")


class _PasswordResponder:
    """The responses for PLAIN, LOGIN and CRAM-MD5: called with nothing for the initial
    response (CRAM-MD5 has none), then with each challenge (decoded)."""

    def __init__(self, mechanism: str, user: str, secret: str) -> None:
        self.mechanism = mechanism
        self.user = user
        self.secret = secret

    @overload
    def __call__(self, challenge: None = None, /) -> bytes | None: ...
    @overload
    def __call__(self, challenge: bytes, /) -> bytes: ...
    def __call__(self, challenge: bytes | None = None, /) -> bytes | None:
        if self.mechanism == "CRAM-MD5":
            if challenge is None:
                return None
            return cram_md5(self.user, self.secret, challenge)
        if self.mechanism == "LOGIN":
            name, password = login(self.user, self.secret)
            return name if challenge is None else password
        return plain(self.user, self.secret)


def _temporary_or(exc: smtplib.SMTPAuthenticationError) -> Reply:
    """The refusal as a Reply; a 4xx one raises TempFailError (75) instead."""
    reply = Reply(exc.smtp_code, reply_text(exc.smtp_error))
    if reply.temporary:
        raise TempFailError(f"authentication failed temporarily: {reply}") from None
    return reply


def _bearer_login(smtp: TracedSMTP, endpoint: Endpoint, source: BearerSource) -> None:
    offered = smtp.esmtp_features.get("auth", "").split()
    mechanism = choose_bearer_mechanism(offered, endpoint.auth, source.provider)
    user = endpoint.user or ""
    two_step = wants_two_step(source, "smtp")

    def attempt(token: str) -> str | None:
        payload = bearer_payload(mechanism, user, token, endpoint.host, endpoint.port)
        responder = _TokenResponder(mechanism, payload)
        try:
            _exchange(smtp, mechanism, responder, initial_response=not two_step)
        except smtplib.SMTPAuthenticationError as exc:
            return responder.detail or str(_temporary_or(exc))
        return None

    retry_once(source, user, attempt)


class _TokenResponder:
    """The responses of one bearer AUTH. `_exchange` calls it with nothing for the
    initial response (or, in the two-step form, with the server's empty challenge), then
    with each further challenge: after the payload, that can only be the JSON error
    challenge, which gets the mechanism's error answer (its detail is kept)."""

    def __init__(self, mechanism: str, payload: bytes) -> None:
        self.mechanism = mechanism
        self.payload = payload
        self.sent = False
        self.detail: str | None = None

    def __call__(self, challenge: bytes | None = None) -> bytes:
        if not self.sent:
            self.sent = True
            return self.payload
        # The challenge arrives decoded; error_detail reads it as sent.
        self.detail = error_detail(base64.b64encode(challenge or b""))
        return error_answer(self.mechanism)
