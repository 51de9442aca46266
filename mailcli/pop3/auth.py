"""POP3 AUTH (RFC 5034) with OAuth2 bearer tokens: XOAUTH2 and OAUTHBEARER.

poplib has no AUTH; this speaks it through the session's guarded `send`/`read_reply`.
The mechanism is `choose_bearer_mechanism` over CAPA's SASL list. Two forms:
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
from typing import TYPE_CHECKING

from mailcli.auth.credential import BearerSource
from mailcli.auth.sasl import (
    bearer_payload,
    choose_bearer_mechanism,
    error_answer,
    error_detail,
    retry_once,
    wants_two_step,
)
from mailcli.errors import PermissionDeniedError
from mailcli.pop3.wire import NegativeReply, error_from_pop3_reply, reply_text

if TYPE_CHECKING:  # the session imports this module
    from mailcli.pop3.session import Pop3Session


def bearer_login(session: Pop3Session, source: BearerSource) -> None:
    """Log in with an OAuth2 token; 77 when refused after one renewal."""
    endpoint = session.endpoint
    user = endpoint.user or ""
    offered = session.capabilities.get("SASL", [])
    mechanism = choose_bearer_mechanism(offered, endpoint.auth, source.provider)
    two_step = wants_two_step(source, "pop3")

    def attempt(token: str) -> str | None:
        payload = bearer_payload(mechanism, user, token, endpoint.host, endpoint.port)
        return _attempt(session, mechanism, _encoded(payload), two_step=two_step)

    retry_once(source, user, attempt)


def _attempt(session: Pop3Session, mechanism: str, response: str, *, two_step: bool) -> str | None:
    """One AUTH: None when accepted, else the server's detail about the refused token."""
    if two_step:
        session.send(f"AUTH {mechanism}")
        reply = session.read_reply()
        if not _continues(reply):  # refused before any token was sent: not the token's fault
            raise error_from_pop3_reply(poplib.error_proto(reply))
        session.send(response)
    else:
        session.send(f"AUTH {mechanism} {response}")
    reply = session.read_reply()
    detail = None
    if _continues(reply):  # the error challenge: answer it, then read the final -ERR
        detail = error_detail(reply[1:].strip())
        session.send(_encoded(error_answer(mechanism)))
        reply = session.read_reply()
    return _refusal_detail(reply, detail)


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
