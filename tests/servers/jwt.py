"""HS256 JSON Web Tokens that Dovecot's oauth2 passdb validates locally.

Dovecot 2.3 (`introspection_mode = local`) looks the key up as
`local_validation_key_dict` + `<azp or "default">/<alg>/<kid or "default">`, base64 in
the file; it wants `typ: JWT` in the header and `sub`, `exp` and the username attribute
(here `email`) in the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

KEY_PATH = Path("default") / "HS256" / "default"
ISSUED_AGO = 5  # seconds


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_key() -> bytes:
    return secrets.token_bytes(32)


def write_key(key_dir: Path, key: bytes) -> Path:
    """Store `key` where `local_validation_key_dict = fs:posix:prefix=KEY_DIR/` finds it."""
    path = key_dir / KEY_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(base64.b64encode(key).decode("ascii"))
    return path


def mint(key: bytes, email: str, *, lifetime: float, now: float | None = None) -> str:
    """A token for `email`, valid for `lifetime` seconds from `now`.

    Issued (and valid from) a little before `now`, as a provider's token is: Dovecot
    compares `iat` and `nbf` with time(2), a coarse clock that can still read the previous
    second just after time.time() has passed into the next, and refuses a token "issued
    in future" as an invalid one."""
    start = int(time.time() if now is None else now)
    issued = start - ISSUED_AGO
    header = {"alg": "HS256", "typ": "JWT"}
    body = {
        "sub": email,
        "email": email,
        "iat": issued,
        "nbf": issued,
        "exp": start + int(lifetime),
        "jti": secrets.token_hex(8),
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, body)
    )
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def claims(token: str) -> dict[str, object]:
    """The body of a token (unverified), for assertions."""
    body = token.split(".")[1]
    result: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return result
