"""The SCRAM client (RFC 5802; SCRAM-SHA-256 from RFC 7677): one for SMTP AUTH and POP3
SASL, which only frame its messages (the AUTH line, the continuations).

The exchange, each message before base64:
- client-first: `n,,n=USER,r=NONCE`. The GS2 header `n,,` says the client does not do
  channel binding (the -PLUS variants are not spoken: TLS 1.3 has no `tls-unique`,
  Python's ssl exposes no `tls-exporter`, and `tls-server-end-point` needs the
  certificate's signature algorithm, which the standard library does not parse). USER
  is sent as given with `,` and `=` escaped (`=2C`, `=3D`); it is not SASLprepped
  (servers compare it with the name they store, as typed). NONCE is random
  (`secrets`), or injected for the RFC's test vectors.
- server-first: `r=NONCE+SERVER,s=SALT,i=COUNT[,ext]`. The nonce must extend ours, the
  salt be base64, the count lie between MIN_ITERATIONS (RFC 7677's floor, applied to
  SHA-1 too) and MAX_ITERATIONS (so a hostile count cannot keep us hashing for
  minutes); anything else, or a mandatory extension (`m=`), is a protocol error (76).
- client-final: `c=biws,r=NONCE+SERVER,p=PROOF`, PROOF from the SASLprepped password
  (RFC 4013, below) salted with PBKDF2.
- server-final: `v=SIGNATURE`, compared in constant time with the one the password
  gives. Wrong, missing or unreadable: 77, the server has not shown it knows the
  password (or is not the server). `e=ERROR`: `no-resources` 75; `invalid-proof`,
  `unknown-user`, `invalid-username-encoding`, `other-error` (and unknown values) 77;
  the channel-binding and encoding values 76.

The password, the salted password and the keys stay inside the client: no message or
exception carries them, and the password is dropped once the proof is made.

SASLprep (RFC 4013, a stringprep profile of RFC 3454) is done exactly with the
standard library's `stringprep` tables (Unicode 3.2): non-ASCII spaces mapped to
SPACE, the "commonly mapped to nothing" characters removed, NFKC, the prohibited
tables refused, the bidi rule applied. Unassigned code points are allowed (a password
is a "query" string, RFC 5802 section 2.2). A password SASLprep refuses, or that it
empties, is a credentials error (78): SCRAM cannot carry it.
"""

from __future__ import annotations

import base64
import binascii

from mailcli.auth.sasl import saslname
from mailcli.errors import (
    CredentialsError,
    MailcliError,
    PermissionDeniedError,
    ProtocolError,
    TempFailError,
)

SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_1 = "SCRAM-SHA-1"
SCRAM_MECHANISMS = (SCRAM_SHA_256, SCRAM_SHA_1)  # the stronger first
_HASHES = {SCRAM_SHA_256: "sha256", SCRAM_SHA_1: "sha1"}
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 10_000_000  # about 4 s of SHA-256 on a slow core: a bound, not a wait
_GS2_HEADER = "n,,"
_CHANNEL_BINDING = base64.b64encode(_GS2_HEADER.encode()).decode("ascii")  # "biws"
_SHOWN_LIMIT = 64  # of a server's error value in a message
_TEMPORARY_ERRORS = {"no-resources"}
_PROTOCOL_ERRORS = {
    "invalid-encoding",
    "extensions-not-supported",
    "channel-bindings-dont-match",
    "server-does-support-channel-binding",
    "channel-binding-not-supported",
    "unsupported-channel-binding-type",
}


def is_scram(mechanism: str) -> bool:
    return mechanism.upper() in _HASHES


class ScramClient:
    """One SCRAM exchange as `user`. `respond` answers the server in order: None (the
    initial response) gives client-first, the server-first gives client-final, the
    server-final is verified and answered with nothing (b""). `verified` is True once
    the server's signature matched; a session that sees success before that must still
    refuse it (`require_verified`)."""

    def __init__(self, mechanism: str, user: str, password: str, *, nonce: str | None = None):
        self.mechanism = mechanism.upper()
        self.user = user
        self._hash = _HASHES[self.mechanism]
        self._password = password
        self._nonce = nonce if nonce is not None else _new_nonce()
        self._client_first_bare = f"n={saslname(user)},r={self._nonce}"
        self._server_signature: bytes | None = None
        self._step = 0
        self.verified = False

    def __repr__(self) -> str:  # never the password, whatever prints the object
        return f"ScramClient({self.mechanism}, user={self.user!r}, step={self._step})"

    def __call__(self, challenge: bytes | None) -> bytes:
        return self.respond(challenge)

    def respond(self, challenge: bytes | None) -> bytes:
        """The answer to the next server message (None: the initial response)."""
        self._step += 1
        if self._step == 1:
            return self.client_first()
        if challenge is None:
            raise ProtocolError(f"the server sent an empty {self.mechanism} challenge")
        if self._step == 2:
            return self.client_final(challenge)
        if self._step == 3:
            self.verify_server_final(challenge)
            return b""
        raise ProtocolError(f"the server continues {self.mechanism} after its signature")

    def client_first(self) -> bytes:
        return f"{_GS2_HEADER}{self._client_first_bare}".encode()

    def client_final(self, server_first: bytes) -> bytes:
        """The proof for the server's salt and count; keeps the signature to expect."""
        text = _text(server_first, "server-first message")
        nonce, salt, iterations = self._parse_server_first(text)
        without_proof = f"c={_CHANNEL_BINDING},r={nonce}"
        auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        proof, self._server_signature = _proof_and_signature(
            self._hash, _password_bytes(self._password), salt, iterations, auth_message
        )
        self._password = ""  # not needed again: keep it no longer than the proof
        return f"{without_proof},p={_b64(proof)}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        """Accept the server's signature or raise (77 wrong or missing, `e=` mapped)."""
        import hmac  # only on this path, for compare_digest

        text = server_final.decode("utf-8", "replace")
        attribute, value = _first_attribute(text)
        if attribute == "e":
            raise self._server_error(value)
        expected = self._server_signature
        signature = _unbase64(value) if attribute == "v" else None
        if expected is None or signature is None or not hmac.compare_digest(signature, expected):
            raise self.unverified()
        self.verified = True

    def require_verified(self) -> None:
        """After the server's success reply: raise unless its signature was checked."""
        if not self.verified:
            raise self.unverified()

    def unverified(self) -> PermissionDeniedError:
        return PermissionDeniedError(
            f"the server did not prove it knows the password of {self.user!r} "
            f"({self.mechanism} server signature wrong or missing); the session is ended",
            hint="something between mailcli and the server may be impersonating it",
        )

    def _parse_server_first(self, text: str) -> tuple[str, bytes, int]:
        attributes = text.split(",")
        if attributes[0].startswith("e="):
            raise self._server_error(attributes[0][2:])
        if attributes[0].startswith("m="):
            raise _malformed("asks for a mandatory extension mailcli does not speak")
        if len(attributes) < 3 or [a[:2] for a in attributes[:3]] != ["r=", "s=", "i="]:
            raise _malformed("is not r=NONCE,s=SALT,i=COUNT")
        nonce, salt, count = (a[2:] for a in attributes[:3])
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise _malformed("does not extend mailcli's nonce")
        if not all(0x21 <= ord(c) <= 0x7E for c in nonce):
            raise _malformed("has a nonce with characters SCRAM does not allow")
        salt_bytes = _unbase64(salt)
        if not salt_bytes:
            raise _malformed("has no salt or one that is not base64")
        return nonce, salt_bytes, _iterations(count)

    def _server_error(self, value: str) -> MailcliError:
        shown = "".join(c if c.isprintable() else " " for c in value[:_SHOWN_LIMIT])
        message = f"{self.mechanism} as {self.user!r} failed: the server says {shown}"
        if value in _TEMPORARY_ERRORS:
            return TempFailError(message)
        if value in _PROTOCOL_ERRORS:
            return ProtocolError(message)
        return PermissionDeniedError(
            message, hint="check the user and the password source (`mailcli password where`)"
        )


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a query string; ValueError names the broken rule (never the
    text)."""
    import stringprep
    import unicodedata

    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for character in prepared:
        if _prohibited(character):
            raise ValueError("a prohibited character (a control, private-use or non-character)")
    if any(stringprep.in_table_d1(c) for c in prepared):
        if any(stringprep.in_table_d2(c) for c in prepared):
            raise ValueError("right-to-left and left-to-right characters mixed")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise ValueError("right-to-left text that neither starts nor ends right-to-left")
    return prepared


def _prohibited(character: str) -> bool:
    import stringprep

    checks = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    return any(check(character) for check in checks)


def _password_bytes(password: str) -> bytes:
    try:
        prepared = saslprep(password)
    except ValueError as exc:
        raise CredentialsError(
            f"the password cannot be used with SCRAM: SASLprep refuses it ({exc})",
            hint="force another mechanism with --auth (PLAIN inside TLS)",
        ) from None
    if not prepared:
        raise CredentialsError("the password is empty after SASLprep; SCRAM cannot carry it")
    return prepared.encode()


def _proof_and_signature(
    hash_name: str, password: bytes, salt: bytes, iterations: int, auth_message: bytes
) -> tuple[bytes, bytes]:
    """RFC 5802 section 3: ClientProof and ServerSignature for AuthMessage."""
    import hashlib
    import hmac

    salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    client_signature = hmac.digest(stored_key, auth_message, hash_name)
    proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
    server_key = hmac.digest(salted, b"Server Key", hash_name)
    return proof, hmac.digest(server_key, auth_message, hash_name)


def _iterations(count: str) -> int:
    # Digits only, and few of them: int() of a long string is itself slow.
    if not count.isascii() or not count.isdigit() or len(count) > 10:
        raise _malformed("has an iteration count that is not a number")
    iterations = int(count)
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ProtocolError(
            f"the server asks for {iterations} SCRAM iterations; mailcli accepts "
            f"{MIN_ITERATIONS} to {MAX_ITERATIONS}"
        )
    return iterations


def _first_attribute(text: str) -> tuple[str, str]:
    first = text.split(",", 1)[0]
    name, equals, value = first.partition("=")
    return (name, value) if equals and len(name) == 1 else ("", "")


def _text(message: bytes, what: str) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("is not UTF-8", what) from None


def _malformed(problem: str, what: str = "server-first message") -> ProtocolError:
    return ProtocolError(f"the server's SCRAM {what} {problem}")


def _unbase64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _new_nonce() -> str:
    import secrets  # only on this path

    return secrets.token_urlsafe(24)  # letters, digits, "-" and "_": no "," to escape
