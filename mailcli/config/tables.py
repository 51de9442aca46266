"""The tables inside an account of the configuration file, each read into its record:
[accounts.NAME.smtp] and [accounts.NAME.pop3] (`ServerSettings`), [accounts.NAME.fetch]
(`FetchSettings`), [accounts.NAME.oauth2] (`OAuthSettings`); and `Reader`, the typed
getters every part of the file is read with.

Contract: each value is checked once, here, as it is read; a wrong one is a ConfigError
`FILE: KEY: problem` naming the dotted key (78), an unknown key one listing the known
keys. This module imports nothing else of mailcli.config: the package's `__init__` (the
file, its accounts, the edits) uses it, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, NoReturn, TypeVar, get_args

from mailcli.endpoint import ADDRESS_FAMILIES, SECURITY_MODES, ServerSettings
from mailcli.errors import ConfigError

_SERVER_KEYS = {"host", "port", "security", "user", "auth", "cafile"}
_SERVER_KEYS |= {"family", "source_address", "proxy"}  # how to connect (mailcli.transport.connect)
_SERVER_KEYS |= {"client_cert", "client_key", "tls_fingerprint"}  # TLS (mailcli.tlsinfo)
FETCH_KEYS = {"to", "delete"}
FETCH_KEYS |= {"lmtp_rcpt"}  # the RCPT TO address of `--to lmtp:` (mailcli.fetch.lmtp)
FETCH_KEYS |= {"delete_after", "delete_larger_than"}  # retention (mailcli.fetch.retention)
FETCH_KEYS |= {"received_header"}  # prepend a Received line (mailcli.fetch.received)
FETCH_KEYS |= {"filter"}  # a header filter before download (mailcli.fetch.filter)
_OAUTH2_KEYS = {
    "provider",
    "client_id",
    "client_secret",
    "client_secret_command",
    "tenant",
    "authorize_url",
    "token_url",
    "device_url",
    "revoke_url",
    "scopes",
    "token_store",
}
OAuthProvider = Literal["google", "microsoft", "custom"]
OAUTH2_PROVIDERS: tuple[OAuthProvider, ...] = get_args(OAuthProvider)
TokenStoreKind = Literal["keyring", "file"]  # where an account's OAuth2 tokens are kept
TOKEN_STORES: tuple[TokenStoreKind, ...] = get_args(TokenStoreKind)
DEFAULT_TOKEN_STORE: TokenStoreKind = "keyring"


@dataclass(frozen=True)
class FetchSettings:
    """[accounts.NAME.fetch]: defaults for `mailcli fetch`."""

    to: str | None = None
    delete: bool = False
    lmtp_rcpt: str | None = None  # LMTP's recipient; None: the account's POP3 user
    delete_after: int | None = None  # days a stored message stays on the server
    delete_larger_than: int | None = None  # octets: larger new mail is deleted unread
    received_header: bool = False  # a Received line before each message (off: byte-identical)
    filter: str | None = None  # a shell command judging each header: deliver, delete, skip


class OAuthSettings(NamedTuple):
    """[accounts.NAME.oauth2]: log in with OAuth2 (mailcli.auth.oauth); None = unset."""

    provider: OAuthProvider
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_command: str | None = None
    tenant: str = "common"  # microsoft only
    authorize_url: str | None = None  # overrides, any provider; required for custom
    token_url: str | None = None
    device_url: str | None = None
    revoke_url: str | None = None
    scopes: tuple[str, ...] | None = None  # None: the provider's defaults
    token_store: TokenStoreKind = DEFAULT_TOKEN_STORE


def parse_fetch(reader: Reader, table: Mapping[str, Any], prefix: str) -> FetchSettings:
    """The values of a fetch table whose keys were checked against FETCH_KEYS."""
    return FetchSettings(
        to=reader.string(table, "to", prefix),
        delete=reader.boolean(table, "delete", prefix),
        lmtp_rcpt=reader.string(table, "lmtp_rcpt", prefix),
        delete_after=_count(reader, table, "delete_after", prefix),
        delete_larger_than=_count(reader, table, "delete_larger_than", prefix),
        received_header=reader.boolean(table, "received_header", prefix),
        filter=reader.string(table, "filter", prefix),
    )


def _count(reader: Reader, table: Mapping[str, Any], key: str, prefix: str) -> int | None:
    """A whole number, zero or more (days, octets); None when absent."""
    value = table.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        reader.fail(prefix + key, "must be a whole number, 0 or more")
    return value


def parse_oauth2(reader: Reader, account: Mapping[str, Any], prefix: str) -> OAuthSettings | None:
    if "oauth2" not in account:
        return None
    table = reader.table(account, "oauth2", prefix)
    prefix += "oauth2."
    reader.check_keys(table, _OAUTH2_KEYS, prefix)
    provider = reader.choice(table, "provider", prefix, OAUTH2_PROVIDERS)
    if provider is None:
        reader.fail(prefix + "provider", f"must be one of {', '.join(OAUTH2_PROVIDERS)}")
    chosen = {"scopes", "provider", "token_store"}
    strings = {key: reader.string(table, key, prefix) for key in _OAUTH2_KEYS - chosen}
    if provider == "custom":
        for key in ("authorize_url", "token_url"):
            if not strings[key]:
                reader.fail(prefix + key, 'required with provider = "custom"')
    token_store = reader.choice(table, "token_store", prefix, TOKEN_STORES)
    if strings["client_secret"] is not None and strings["client_secret_command"] is not None:
        reader.fail(
            prefix + "client_secret", "give client_secret or client_secret_command, not both"
        )
    return OAuthSettings(
        provider,
        **{key: value for key, value in strings.items() if value is not None},
        scopes=_scopes(reader, table, prefix),
        token_store=token_store or DEFAULT_TOKEN_STORE,
    )


def _scopes(reader: Reader, table: Mapping[str, Any], prefix: str) -> tuple[str, ...] | None:
    scopes = table.get("scopes")
    if scopes is None:
        return None
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        reader.fail(
            prefix + "scopes", 'must be a list of strings, e.g. ["https://mail.google.com/"]'
        )
    return tuple(scopes)


def parse_server(reader: Reader, table: Mapping[str, Any], prefix: str) -> ServerSettings:
    reader.check_keys(table, _SERVER_KEYS, prefix)
    security = reader.choice(table, "security", prefix, SECURITY_MODES)
    port = table.get("port")
    if port is not None and (type(port) is not int or not 0 < port < 65536):
        reader.fail(prefix + "port", "must be a port number (1-65535)")
    return ServerSettings(
        host=reader.string(table, "host", prefix),
        port=port,
        security=security,
        user=reader.string(table, "user", prefix),
        auth=reader.string(table, "auth", prefix),
        cafile=reader.string(table, "cafile", prefix),
        family=reader.choice(table, "family", prefix, ADDRESS_FAMILIES),
        source_address=_ip_address(reader, table, prefix),
        proxy=_proxy_url(reader, table, prefix),
        client_cert=reader.string(table, "client_cert", prefix),
        client_key=reader.string(table, "client_key", prefix),
        tls_fingerprint=_fingerprints(reader, table, prefix),
    )


def _fingerprints(reader: Reader, table: Mapping[str, Any], prefix: str) -> tuple[str, ...] | None:
    """One pin or a list of them, each checked now (a typo is 78 naming the key)."""
    key = prefix + "tls_fingerprint"
    value = table.get("tls_fingerprint")
    if value is None:
        return None
    pins = [value] if isinstance(value, str) else value
    if not isinstance(pins, list) or not pins or not all(isinstance(p, str) for p in pins):
        reader.fail(key, 'must be "SHA256:..." or a list of them')
    from mailcli.tlsinfo import parse_fingerprint

    for pin in pins:
        try:
            parse_fingerprint(pin)
        except ValueError as exc:
            reader.fail(key, str(exc))
    return tuple(pins)


def _ip_address(reader: Reader, table: Mapping[str, Any], prefix: str) -> str | None:
    import ipaddress

    value = reader.string(table, "source_address", prefix)
    try:
        return None if value is None else str(ipaddress.ip_address(value))
    except ValueError:
        reader.fail(prefix + "source_address", f"{value!r} is not an IP address of this machine")


def _proxy_url(reader: Reader, table: Mapping[str, Any], prefix: str) -> str | None:
    """A SOCKS5 URL or "env"; the URL is parsed when connecting (transport.socks, 78)."""
    value = reader.string(table, "proxy", prefix)
    if value and value != "env" and not value.lower().startswith(("socks5://", "socks5h://")):
        reader.fail(prefix + "proxy", 'must be a socks5:// or socks5h:// URL, or "env" (ALL_PROXY)')
    return value


_Choice = TypeVar("_Choice", bound=str)


class Reader:
    """Typed access to TOML tables that reports errors as `FILE: KEY: problem`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.path}: {key}: {problem}")

    def check_keys(self, table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(prefix + key, f"unknown key (known: {', '.join(sorted(allowed))})")

    def table(self, table: Mapping[str, Any], key: str, prefix: str) -> Mapping[str, Any]:
        value = table.get(key, {})
        if not isinstance(value, dict):
            self.fail(prefix + key, "must be a table")
        return value

    def string(self, table: Mapping[str, Any], key: str, prefix: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(prefix + key, "must be a string")
        return value

    def choice(
        self, table: Mapping[str, Any], key: str, prefix: str, choices: tuple[_Choice, ...]
    ) -> _Choice | None:
        """A string that must be one of `choices`, as the choice's type; None when absent."""
        value = self.string(table, key, prefix)
        if value is None:
            return None
        for choice in choices:
            if choice == value:
                return choice
        self.fail(prefix + key, f"must be one of {', '.join(choices)}")

    def boolean(self, table: Mapping[str, Any], key: str, prefix: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.fail(prefix + key, "must be true or false")
        return bool(value)
