"""Where an account's OAuth2 tokens live between runs.

Three parts, stored separately because they live differently:
- the *record*: the refresh token (long-lived, rotated by some providers), the granted
  scopes and who logged in;
- the *cache*: the current access token and its expiry (minutes to an hour), so a run
  does not ask the token endpoint when the last one is still good;
- the *client* part, only when one was given at `oauth login --client-secret`: the
  client secret. It outlives the tokens: invalid_grant clears the tokens but keeps it
  (the next login needs it again); only logout forgets it.

`token_store = "keyring"` (the default): all in the OS keyring, service `mailcli`, user
`oauth:PROVIDER:ACCOUNT` (record), `oauth:PROVIDER:ACCOUNT:access` (cache) and
`oauth:PROVIDER:ACCOUNT:client` (client secret). Values
over 1,200 characters (Microsoft's access tokens are 2-3 KB; Windows Credential Manager
caps a secret at 2,560 bytes) are split into `...#1`, `...#2`, ...; the entry itself
then holds `mailcli-chunks:N:DIGEST`, and a reassembled value that does not match the
digest (a write cut short between pieces) is reported, never used. A keyring that does
not answer is an error (78) naming `token_store = "file"`: never a silent fallback to a
file the user did not ask for.

`token_store = "file"`: the record in `$XDG_STATE_HOME/mailcli/oauth/ACCOUNT.json`, the
cache in `$XDG_CACHE_HOME/mailcli/oauth/ACCOUNT.json`, the client secret in
`$XDG_STATE_HOME/mailcli/oauth/client/ACCOUNT.json`: 0600 in 0700 folders, replaced
atomically (mailcli.fsutil: O_EXCL|O_NOFOLLOW temporary, fsync, rename). A symlink at
either path, or a file others may read, is refused rather than read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mailcli.auth.credentials import (
    SERVICE,
    KeyringUnavailable,
    keyring_delete,
    keyring_get,
    keyring_set,
)
from mailcli.auth.oauth.tokens import TokenSet
from mailcli.config import OAuthProvider, OAuthSettings, state_home
from mailcli.errors import CredentialsError

CHUNK = 1200
CHUNKED = "mailcli-chunks:"


class TokenStore:
    """The record, the cache and the client secret of one account; `load`, `save`,
    `client_secret`, `clear`, `where`."""

    def __init__(self, account: str, provider: OAuthProvider) -> None:
        self.account = account
        self.provider = provider

    def load(self) -> TokenSet | None:
        """The stored tokens (access token "" and expiry 0 when none is cached)."""
        record = self._read("record")
        if record is None or record.string("provider", self.provider) != self.provider:
            return None
        cache = self._read("cache") or _Fields({}, "", self._damaged)
        record_lifetime = record.seconds("lifetime")
        return TokenSet(
            access_token=cache.string("access_token", ""),
            expires_at=cache.seconds("expires_at"),
            refresh_token=record.optional_string("refresh_token"),
            scope=record.string("scope", ""),
            lifetime=cache.seconds("lifetime", record_lifetime),
            identity=record.optional_string("identity"),
        )

    def save(self, tokens: TokenSet, *, client_secret: str | None = None) -> None:
        """The record first: a rotated refresh token is stored before the access token
        that came with it is used (the old one is dead from that moment on). A
        `client_secret` (from login) is stored before both; None keeps the stored one."""
        if client_secret is not None:
            self._write("client", {"provider": self.provider, "client_secret": client_secret})
        record = {
            "provider": self.provider,
            "refresh_token": tokens.refresh_token,
            "scope": tokens.scope,
            "identity": tokens.identity,
            "lifetime": tokens.lifetime,
        }
        self._write("record", record)
        cache = {
            "access_token": tokens.access_token,
            "expires_at": tokens.expires_at,
            "lifetime": tokens.lifetime,
        }
        self._write("cache", cache)

    def client_secret(self) -> str | None:
        """The client secret given at login, if one was stored."""
        document = self._read("client")
        if document is None or document.string("provider", self.provider) != self.provider:
            return None  # given for another provider (the file store's name has none)
        return document.optional_string("client_secret") or None

    def clear(self, *, client_secret: bool = False) -> bool:
        """Forget the tokens (and with `client_secret`, the stored client secret: logout);
        False when there was nothing to forget."""
        parts = ("cache", "client", "record") if client_secret else ("cache", "record")
        found = [self._delete(part) for part in parts]
        return any(found)

    def where(self) -> str:
        raise NotImplementedError

    def _read(self, part: str) -> _Fields | None:
        raise NotImplementedError

    def _write(self, part: str, document: dict[str, Any]) -> None:
        raise NotImplementedError

    def _delete(self, part: str) -> bool:
        raise NotImplementedError

    def _decode(self, text: str, where: str) -> _Fields:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # nested past Python's stack: not ours
            document = None
        if not isinstance(document, dict):
            raise self._damaged(f"{where}: not a JSON object")
        return _Fields(document, where, self._damaged)

    def _damaged(self, what: str) -> CredentialsError:
        return CredentialsError(
            f"the stored OAuth2 tokens of account {self.account!r} are damaged ({what})",
            hint=f"forget them with `mailcli oauth logout -a {self.account}`, then log in "
            f"again with `mailcli oauth login -a {self.account}`",
        )


# The latest instant a stored expiry may name: 9999-12-31T23:59:59Z, the end of what
# datetime can show (`oauth status`). Lifetimes are bounded by the same number.
_LATEST = 253402300799.0


class _Fields:
    """One stored JSON object and where it is (a file, a keyring user): each field read
    is checked, and a wrong one is CredentialsError (78) naming both. A missing field is
    its default: older versions wrote fewer."""

    def __init__(
        self, document: dict[str, Any], where: str, damaged: Callable[[str], CredentialsError]
    ) -> None:
        self.document = document
        self.where = where
        self._damaged = damaged

    def string(self, name: str, default: str) -> str:
        value = self.document.get(name, default)
        if not isinstance(value, str):
            raise self._wrong(name, "a string")
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.document.get(name)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "a string or null")
        return value

    def seconds(self, name: str, default: float = 0.0) -> float:
        """A time or a duration in seconds: a finite number from 0 to _LATEST."""
        value = self.document.get(name, default)
        # bool is an int; NaN fails every comparison; a huge int compares exactly.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(name, "a number of seconds")
        if not 0 <= value <= _LATEST:
            raise self._wrong(name, "a number of seconds")
        return float(value)

    def _wrong(self, name: str, expected: str) -> CredentialsError:
        return self._damaged(f"{self.where}: {name} is not {expected}")


class KeyringTokenStore(TokenStore):
    """The tokens in the OS keyring (service `mailcli`)."""

    def key(self, part: str) -> str:
        suffix = {"record": "", "cache": ":access", "client": ":client"}[part]
        return f"oauth:{self.provider}:{self.account}{suffix}"

    def where(self) -> str:
        return f"keyring (service {SERVICE!r}, user {self.key('record')!r})"

    def _read(self, part: str) -> _Fields | None:
        key = self.key(part)
        try:
            text = self._get_joined(key)
        except KeyringUnavailable as exc:
            raise self._unavailable(exc) from None
        return None if text is None else self._decode(text, f"keyring user {key!r}")

    def _write(self, part: str, document: dict[str, Any]) -> None:
        try:
            self._put_split(self.key(part), json.dumps(document))
        except KeyringUnavailable as exc:
            raise self._unavailable(exc) from None

    def _delete(self, part: str) -> bool:
        key = self.key(part)
        try:
            count = _chunk_count(keyring_get(key))
            for number in range(1, count + 1):
                keyring_delete(f"{key}#{number}")
            return keyring_delete(key)
        except KeyringUnavailable as exc:
            raise self._unavailable(exc) from None

    def _get_joined(self, key: str) -> str | None:
        head = keyring_get(key)
        if head is None or not head.startswith(CHUNKED):
            return head
        count, digest = _chunk_count(head), head.rsplit(":", 1)[-1]
        pieces = [keyring_get(f"{key}#{number}") for number in range(1, count + 1)]
        value = "".join(piece or "" for piece in pieces)
        if None in pieces or _digest(value) != digest:
            raise self._damaged(f"keyring user {key!r}: its pieces do not fit together")
        return value

    def _put_split(self, key: str, value: str) -> None:
        stale = _chunk_count(keyring_get(key))
        pieces = [value[start : start + CHUNK] for start in range(0, len(value), CHUNK)]
        if len(pieces) <= 1:
            keyring_set(key, value)
            pieces = []
        else:  # the pieces first, the entry naming them last
            for number, piece in enumerate(pieces, 1):
                keyring_set(f"{key}#{number}", piece)
            keyring_set(key, f"{CHUNKED}{len(pieces)}:{_digest(value)}")
        for number in range(len(pieces) + 1, stale + 1):
            keyring_delete(f"{key}#{number}")

    def _unavailable(self, exc: KeyringUnavailable) -> CredentialsError:
        return CredentialsError(
            f"cannot use the keyring for the OAuth2 tokens of account {self.account!r}: {exc}",
            hint=f'on a host without a usable keyring, set token_store = "file" in '
            f"[accounts.{self.account}.oauth2] (tokens in a 0600 file), then log in again",
        )


class FileTokenStore(TokenStore):
    """The tokens in 0600 JSON files (`token_store = "file"`)."""

    def __init__(self, account: str, provider: OAuthProvider, environ: Mapping[str, str]) -> None:
        super().__init__(account, provider)
        name = quote(account, safe="") + ".json"  # an account name is no path
        self.record_path = state_home(environ) / "oauth" / name
        self.cache_path = cache_home(environ) / "oauth" / name
        # A folder of its own: no account name can make "ACCOUNT.json" collide with it.
        self.client_path = state_home(environ) / "oauth" / "client" / name

    def path(self, part: str) -> Path:
        return {"record": self.record_path, "client": self.client_path}.get(part, self.cache_path)

    def where(self) -> str:
        return f"file {self.record_path}"

    def _read(self, part: str) -> _Fields | None:
        path = self.path(part)
        try:
            text = _read_private(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialsError(
                f"cannot read the OAuth2 token file {path}: {_why(exc)}",
                hint=f"remove it and log in again with `mailcli oauth login -a {self.account}`",
            ) from exc
        return self._decode(text, str(path))

    def _write(self, part: str, document: dict[str, Any]) -> None:
        from mailcli.fsutil import atomic_write, ensure_private_dir, write_error

        path = self.path(part)
        try:
            ensure_private_dir(path.parent)
            atomic_write(path, json.dumps(document).encode())
        except OSError as exc:
            raise write_error(exc, f"the OAuth2 token file {path}") from exc

    def _delete(self, part: str) -> bool:
        path = self.path(part)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise CredentialsError(f"cannot remove {path}: {exc.strerror}") from exc
        return True


def token_store(
    account: str, settings: OAuthSettings, environ: Mapping[str, str] = os.environ
) -> TokenStore:
    if settings.token_store == "file":
        return FileTokenStore(account, settings.provider, environ)
    return KeyringTokenStore(account, settings.provider)


def lock_path(account: str, state: Path) -> Path:
    """The flock a refresh of this account holds (whatever its token_store)."""
    return state / "oauth" / (quote(account, safe="") + ".lock")


def cache_home(environ: Mapping[str, str] = os.environ) -> Path:
    """mailcli's cache folder: `$XDG_CACHE_HOME/mailcli` (default ~/.cache/mailcli)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mailcli"


class _NotPrivate(OSError):
    pass


def _read_private(path: Path) -> str:
    """The file's text; never through a symlink, never a file others can read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            raise _NotPrivate(f"mode {mode:04o}, readable by others (chmod 600 {path})")
        return handle.read().decode("utf-8", "replace")


def _why(exc: OSError) -> str:
    import errno

    if isinstance(exc, _NotPrivate):
        return str(exc)
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link (refused)"
    return exc.strerror or str(exc)


def _chunk_count(head: str | None) -> int:
    if head is None or not head.startswith(CHUNKED):
        return 0
    try:
        return int(head[len(CHUNKED) :].split(":", 1)[0])
    except ValueError:
        return 0


def _digest(value: str) -> str:
    import hashlib  # only for a split value: ~4 ms of OpenSSL at import otherwise

    return hashlib.sha256(value.encode()).hexdigest()[:16]
