"""SASL client responses, shared by the SMTP and POP3 sessions: one encoder per wire
format, each giving the response's bytes before base64. The protocol modules only frame
them (the AUTH line, the continuations); nothing else spells a payload out.

Wire formats (user and secret in UTF-8):
- PLAIN (RFC 4616): `^@U^@P` (^@ is NUL; no authorization identity);
- LOGIN: the user, then the password, each answering one challenge;
- CRAM-MD5 (RFC 2195): `U D`, D the hex HMAC-MD5 of the server's challenge keyed with
  the password;
- APOP (POP3, RFC 1939; not SASL): the hex MD5 of the greeting's timestamp and the
  password;
- XOAUTH2 (Google, Microsoft): `user=U^Aauth=Bearer T^A^A`;
- OAUTHBEARER (RFC 7628): `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A`;
- EXTERNAL (RFC 4422 appendix A): an empty authorization identity, so the server logs
  in the identity the TLS client certificate proved; only when asked for (--auth
  external, `auth = "external"`), never chosen unasked, and no password is looked up;
- SCRAM-SHA-256, SCRAM-SHA-1: an exchange with state (nonce, proof, the server's
  signature to check), so a client object of its own in `auth.scram`, which uses
  `saslname` from here.

A refused token comes back as a continuation carrying base64 JSON
(`{"status":"401",...}`, `{"status":"invalid_token"}`); the client must answer it
(`error_answer`: an empty line for XOAUTH2, `^A` for OAUTHBEARER) and then reads the
final refusal.

A `BearerSource` (`auth.credential`) is what the sessions receive instead of a password
source when an account logs in with OAuth2.

The sessions (`smtp.auth`, `pop3.auth`) send the token with the AUTH command (initial
response) except in the two-step form (`AUTH M`, the server's empty continuation, then
the token), which POP3 uses for Microsoft (it takes no initial response there) and any
source whose `two_step` says so. A refused token is answered, renewed once and retried
once on a new AUTH command (`retry_once`); refused again, the source's `refused` error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailcli.auth.credential import BearerSource
from mailcli.errors import UnavailableError

if TYPE_CHECKING:
    from mailcli.config import OAuthProvider
    from mailcli.endpoint import MailProtocol

XOAUTH2 = "XOAUTH2"
EXTERNAL = "EXTERNAL"
OAUTHBEARER = "OAUTHBEARER"
BEARER_MECHANISMS = (XOAUTH2, OAUTHBEARER)
_STATUS_LIMIT = 64  # of an error challenge's status in a message: "401", "invalid_token"


def plain(user: str, password: str) -> bytes:
    return f"\0{user}\0{password}".encode()


def login(user: str, password: str) -> tuple[bytes, bytes]:
    """The answers to LOGIN's two challenges (or the user as the initial response)."""
    return user.encode(), password.encode()


def external() -> bytes:
    """EXTERNAL's initial response: no authorization identity (the certificate's)."""
    return b""


def is_external(auth: str | None) -> bool:
    """Whether the forced mechanism (--auth, the key `auth`) is EXTERNAL."""
    return (auth or "").upper() == EXTERNAL


def initial_response(response: bytes) -> str:
    """A response as it follows the AUTH command: base64, or `=` for an empty one
    (RFC 4954 and RFC 5034: an empty initial response is `=`, not nothing)."""
    return base64.b64encode(response).decode("ascii") or "="


def cram_md5(user: str, password: str, challenge: bytes) -> bytes:
    """The answer to CRAM-MD5's challenge (as the server sent it, base64 decoded)."""
    import hmac  # only on this path: hashlib's start-up cost stays off every other run

    digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
    return f"{user} {digest}".encode()


def apop(timestamp: bytes, password: str) -> str:
    """APOP's digest (RFC 1939; not SASL, but the same kind of keyed answer): the hex
    MD5 of the greeting's `<timestamp>` followed by the password."""
    import hashlib  # only on this path, as for cram_md5

    return hashlib.md5(timestamp + password.encode()).hexdigest()


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, host: str, port: int) -> bytes:
    fields = f"host={host}\x01port={port}\x01auth=Bearer {token}"
    return f"n,a={saslname(user)},\x01{fields}\x01\x01".encode()


def bearer_payload(mechanism: str, user: str, token: str, host: str, port: int) -> bytes:
    """The client response carrying `token` for `mechanism` (XOAUTH2 or OAUTHBEARER)."""
    if mechanism.upper() == OAUTHBEARER:
        return oauthbearer(user, token, host, port)
    return xoauth2(user, token)


def wants_two_step(source: BearerSource, protocol: MailProtocol) -> bool:
    """The source's own choice when it makes one; else the two-step form only for
    Microsoft's POP3 (its documented exchange: `AUTH XOAUTH2`, `+`, the token)."""
    if source.two_step is not None:
        return source.two_step
    return protocol == "pop3" and source.provider == "microsoft"


def retry_once(source: BearerSource, user: str, attempt: Callable[[str], str | None]) -> None:
    """`attempt(token)` is one AUTH: None when accepted, else what the server said of the
    token (after answering its error challenge). Refused: renew once and retry once on a
    new AUTH; refused again: the source's `refused` error (77). `attempt` raises for
    anything that is not a refused token (a temporary failure stays 75)."""
    detail = attempt(source())
    if detail is None:
        return
    detail = attempt(source.renew())
    if detail is not None:
        raise source.refused(user, detail)


def error_answer(mechanism: str) -> bytes:
    """What the client sends after an error challenge: empty (XOAUTH2) or ^A (RFC 7628)."""
    return b"\x01" if mechanism.upper() == OAUTHBEARER else b""


def error_detail(challenge: bytes) -> str:
    """The server's JSON error challenge, decoded for a one-line message: `status S`
    (printable, bounded) or "no error detail". Never raises, whatever the bytes."""
    import json  # only after a refusal: not on every run's start-up

    try:
        document = json.loads(base64.b64decode(challenge, validate=True) or b"{}")
    except (binascii.Error, ValueError, RecursionError):  # json recurses per level
        return "no error detail"
    if not isinstance(document, dict):
        return "no error detail"
    status = document.get("status", "unknown")
    if isinstance(status, bool) or not isinstance(status, (str, int)):
        return "no error detail"
    shown = "".join(c if c.isprintable() else " " for c in str(status)[:_STATUS_LIMIT])
    return f"status {shown}"


def choose_bearer_mechanism(offered: list[str], forced: str | None, provider: OAuthProvider) -> str:
    """The forced mechanism when offered; else OAUTHBEARER when offered and the provider
    is not Microsoft (which speaks only XOAUTH2); else XOAUTH2."""
    offered = [m.upper() for m in offered]
    if forced:
        mechanism = forced.upper()
        if mechanism not in BEARER_MECHANISMS:
            raise UnavailableError(
                f"AUTH {mechanism} does not carry an OAuth2 token; use xoauth2 or oauthbearer"
            )
        if mechanism not in offered:
            raise not_offered(mechanism, offered)
        return mechanism
    if OAUTHBEARER in offered and provider != "microsoft":
        return OAUTHBEARER
    if XOAUTH2 in offered:
        return XOAUTH2
    raise UnavailableError(
        f"the server offers no OAuth2 mechanism (XOAUTH2, OAUTHBEARER) among "
        f"{' '.join(offered) or 'nothing'}"
    )


def not_offered(mechanism: str, offered: list[str]) -> UnavailableError:
    """The error for a forced mechanism (--auth) the server does not offer (69)."""
    return UnavailableError(
        f"the server does not offer AUTH {mechanism}; it offers {' '.join(offered)}"
    )


def saslname(user: str) -> str:
    """RFC 5801 and RFC 5802's saslname: "=" and "," escaped (in that order)."""
    return user.replace("=", "=3D").replace(",", "=2C")
