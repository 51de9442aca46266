"""SMTP AUTH (RFC 4954) for the submission session: passwords and OAuth2 bearer tokens.

With a password source: the forced mechanism (--auth) or the strongest offered one we
speak (CRAM-MD5, PLAIN, LOGIN); XOAUTH2 only when forced, with the password source's
value as the token (a token from password_command).

With a `BearerSource` (an account with OAuth2): XOAUTH2 or OAUTHBEARER
(`choose_bearer_mechanism`), the token as the initial response (`AUTH M <base64>`), or in
the two-step form when the source asks for it. A refused token comes back as 334 with
a base64 JSON error challenge, which is answered (`error_answer`) before the final 535;
then the token is renewed once and AUTH tried once more on the same connection
(`retry_once`). A 4xx reply to AUTH is temporary (75) and is not retried.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable
from typing import Any

from mailcli.auth.credential import BearerSource
from mailcli.auth.sasl import (
    bearer_payload,
    choose_bearer_mechanism,
    error_answer,
    error_detail,
    retry_once,
    wants_two_step,
)
from mailcli.endpoint import Endpoint
from mailcli.errors import DataError, PermissionDeniedError, TempFailError, UnavailableError
from mailcli.smtp.reply import Reply
from mailcli.smtp.wire import TracedSMTP, text

# Strongest first. XOAUTH2 is used only when asked for (--auth xoauth2) or with OAuth2.
AUTH_PREFERENCE = ("CRAM-MD5", "PLAIN", "LOGIN")

PasswordSource = Callable[[], str]


def authenticate(smtp: TracedSMTP, endpoint: Endpoint, password: PasswordSource) -> None:
    """AUTH as `endpoint.user`; raises 77 when refused, 75 when temporarily impossible,
    69 when no usable mechanism is offered."""
    if isinstance(password, BearerSource):
        _bearer_login(smtp, endpoint, password)
        return
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = choose_mechanism(offered, endpoint.auth)
    secret = password()
    smtp.user, smtp.password = endpoint.user or "", secret
    try:
        if mechanism == "XOAUTH2":
            authobject: Any = _xoauth2(endpoint.user or "", secret)
            smtp.auth("XOAUTH2", authobject, initial_response_ok=True)
        else:
            method = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
            smtp.auth(mechanism, method, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        reply = _temporary_or(exc)
        raise PermissionDeniedError(
            f"authentication as {endpoint.user!r} failed: {reply}",
            hint="check the user and the password source (`mailcli password where`)",
        ) from None


def choose_mechanism(offered: list[str], forced: str | None) -> str:
    """The forced mechanism when offered, else the strongest offered one we speak."""
    if not offered:
        raise UnavailableError(
            "the server offers no AUTH",
            hint="drop --user (and the account's user) to send without authentication",
        )
    if forced:
        mechanism = forced.upper()
        if mechanism not in offered:
            raise UnavailableError(
                f"the server does not offer AUTH {mechanism}; it offers {' '.join(offered)}"
            )
        if mechanism not in (*AUTH_PREFERENCE, "XOAUTH2"):
            raise UnavailableError(f"mailcli does not speak AUTH {mechanism}")
        return mechanism
    for mechanism in AUTH_PREFERENCE:
        if mechanism in offered:
            return mechanism
    raise UnavailableError(f"no supported AUTH mechanism among {' '.join(offered)}")


def _xoauth2(user: str, token: str) -> Callable[[bytes | None], str]:
    def respond(challenge: bytes | None = None) -> str:
        # After an error challenge the client must answer with an empty line.
        return "" if challenge is not None else f"user={user}\x01auth=Bearer {token}\x01\x01"

    return respond


def _temporary_or(exc: smtplib.SMTPAuthenticationError) -> Reply:
    """The refusal as a Reply; a 4xx one raises TempFailError (75) instead."""
    reply = Reply(exc.smtp_code, text(exc.smtp_error))
    if reply.temporary:
        raise TempFailError(f"authentication failed temporarily: {reply}") from None
    return reply


def _bearer_login(smtp: TracedSMTP, endpoint: Endpoint, source: BearerSource) -> None:
    offered = smtp.esmtp_features.get("auth", "").split()
    mechanism = choose_bearer_mechanism(offered, endpoint.auth, source.provider)
    user = endpoint.user or ""
    if not user.isascii():  # smtplib encodes every AUTH response as ASCII
        raise DataError(f"the user name {user!r} is not ASCII: SMTP AUTH cannot carry it here")
    two_step = wants_two_step(source, "smtp")

    def attempt(token: str) -> str | None:
        payload = bearer_payload(mechanism, user, token, endpoint.host, endpoint.port)
        responder = _BearerResponder(mechanism, payload)
        try:
            smtp.auth(mechanism, responder, initial_response_ok=not two_step)
        except smtplib.SMTPAuthenticationError as exc:
            return responder.detail or str(_temporary_or(exc))
        return None

    retry_once(source, user, attempt)


class _BearerResponder:
    """smtplib's authobject for one bearer AUTH. smtplib calls it with nothing for the
    initial response (or, in the two-step form, with the server's empty challenge), then
    with each further challenge: after the payload, that can only be the JSON error
    challenge, which gets the mechanism's error answer (its detail is kept)."""

    def __init__(self, mechanism: str, payload: bytes) -> None:
        self.mechanism = mechanism
        self.payload = payload
        self.sent = False
        self.detail: str | None = None

    def __call__(self, challenge: bytes | None = None) -> str:
        if not self.sent:
            self.sent = True
            return self.payload.decode("ascii")
        # smtplib hands over the challenge decoded; error_detail reads it as sent.
        self.detail = error_detail(base64.b64encode(challenge or b""))
        return error_answer(self.mechanism).decode("ascii")
