"""The TOML configuration file, read into frozen dataclasses.

Location: `--config` / `$MAILCLI_CONFIG`, else `$XDG_CONFIG_HOME/mailcli/config.toml`
(default `~/.config/mailcli/config.toml`). A missing file at the default location is
an empty configuration: mailcli works from flags and environment alone. Every error
names the file and the key, so a user can go straight to the line.

Precedence for connection settings: command-line option > environment > file.

Editing, for `account add` and `account remove` (`add_account`, `remove_account`):
tomlkit round-trips the document (comments, order, formatting), so a hand-written
file stays recognisable after mailcli edits it. The edited text is validated with the
same parser that reads it, then replaced durably (0600: the file names servers and
users, though it never holds a password).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, NoReturn, TypeVar, get_args

# The connection vocabulary (security modes, default ports and timeout) lives in
# mailcli.endpoint, which a run without a config file imports without this module (its
# dataclasses and pathlib); re-exported here, where the file's readers look for it.
from mailcli.endpoint import ADDRESS_FAMILIES, MailProtocol, ServerSettings
from mailcli.endpoint import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from mailcli.endpoint import SECURITY_MODES as SECURITY_MODES
from mailcli.endpoint import SecurityMode as SecurityMode
from mailcli.endpoint import default_port as default_port
from mailcli.endpoint import default_security as default_security
from mailcli.endpoint import security_mode as security_mode
from mailcli.errors import ConfigError

_ACCOUNT_KEYS = {"from", "user", "domain", "password_command", "smtp", "pop3", "fetch", "oauth2"}
_ACCOUNT_KEYS |= {"ehlo", "dsn_notify", "dsn_return"}  # SMTP EHLO name, RFC 3461 defaults
_ACCOUNT_KEYS |= {"fallback"}  # accounts to try when this one's SMTP server cannot take it
_ACCOUNT_KEYS |= {"log"}  # the trail: a file path or "syslog" (mailcli.trail)
_SERVER_KEYS = {"host", "port", "security", "user", "auth", "cafile"}
_SERVER_KEYS |= {"family", "source_address", "proxy"}  # how to connect (mailcli.connect)
_SERVER_KEYS |= {"client_cert", "client_key", "tls_fingerprint"}  # TLS (mailcli.tlsinfo)
_FETCH_KEYS = {"to", "delete"}
_FETCH_KEYS |= {"lmtp_rcpt"}  # the RCPT TO address of `--to lmtp:` (mailcli.fetch.lmtp)
_FETCH_KEYS |= {"delete_after", "delete_larger_than"}  # retention (mailcli.fetch.retention)
_FETCH_KEYS |= {"received_header"}  # prepend a Received line (mailcli.fetch.received)
_FETCH_KEYS |= {"filter"}  # a header filter before download (mailcli.fetch.filter)
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
# A `from` holding one of these is a shell glob that chooses the account by the sender
# (msmtp's rule; mailcli.sendmail.choice matches it), not an address to send as.
FROM_WILDCARDS = ("*", "?", "[")
_TOP_KEYS = {"default_account", "accounts", "aliases"}
_TOP_KEYS |= {"log"}  # the trail of every account without its own


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


@dataclass(frozen=True)
class Account:
    """One [accounts.NAME] table."""

    name: str
    from_addr: str | None = None
    user: str | None = None
    domain: str | None = None
    password_command: str | None = None
    smtp: ServerSettings = field(default_factory=ServerSettings)
    pop3: ServerSettings = field(default_factory=ServerSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    oauth2: OAuthSettings | None = None
    ehlo: str | None = None  # the EHLO name (smtp.ehloname decides the default)
    dsn_notify: str | None = None  # RFC 3461 NOTIFY default: "never" or "failure,delay"...
    dsn_return: str | None = None  # RET default: "full" or "headers"
    # Accounts whose SMTP servers take a message this one's could not, in order. Final:
    # a fallback's own fallbacks are not followed.
    fallback: tuple[str, ...] = ()
    log: str | None = None  # the trail: a file path or "syslog"; wins over the top's

    def server(self, protocol: MailProtocol) -> ServerSettings:
        return self.smtp if protocol == "smtp" else self.pop3

    @property
    def from_is_pattern(self) -> bool:
        """`from` is a glob such as `*@example.org`: it chooses the account by sender."""
        return self.from_addr is not None and any(c in self.from_addr for c in FROM_WILDCARDS)

    def literal_from(self) -> str | None:
        """`from` as a From field or MAIL FROM; a pattern cannot be one (78, saying why)."""
        if self.from_is_pattern:
            raise ConfigError(
                f"account {self.name!r}: from = {self.from_addr!r} is a pattern that chooses "
                "the account by sender, not an address to send as",
                hint="give the sender: --from ADDR to send, -f ADDR or a From field to sendmail",
            )
        return self.from_addr


@dataclass(frozen=True)
class Config:
    """The whole file. `exists` is False when no file was found (flags-only use)."""

    path: Path
    exists: bool = False
    default_account: str | None = None
    accounts: Mapping[str, Account] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    log: str | None = None  # the trail of accounts without their own `log`

    def log_target(self, account: Account | None) -> str | None:
        """Where a run of `account` leaves its trail: its own `log`, else the top's."""
        return account.log if account is not None and account.log else self.log

    def select_account(self, name: str | None) -> Account | None:
        """The account named, else the default, else the only one, else None."""
        if name is None:
            name = self.default_account
        if name is None:
            return next(iter(self.accounts.values())) if len(self.accounts) == 1 else None
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise ConfigError(
                f"{self.path}: no account {name!r} (key accounts.{name}); known: {known}",
                hint="list them with `mailcli account list`",
            ) from None


def state_home(environ: Mapping[str, str] = os.environ) -> Path:
    """mailcli's state folder: `$XDG_STATE_HOME/mailcli` (default ~/.local/state/mailcli),
    for the queue, the fetch state and the shell history."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mailcli"


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mailcli" / "config.toml"


def load_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Read the config file. An explicitly named file must exist; the default need not."""
    explicit = path is not None
    path = path if path is not None else default_config_path(environ)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: config file not found") from None
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    import tomllib  # only when there is a file to read: keeps --help and --version fast

    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:  # the parser recurses per level: a file can outnest the stack
        raise _too_deep(path) from None
    return parse_config(document, path)


def _too_deep(path: Path) -> ConfigError:
    return ConfigError(f"{path}: not valid TOML: nested too deeply (arrays or tables)")


def parse_config(document: Mapping[str, Any], path: Path) -> Config:
    """Validate a parsed TOML document; errors name the file and the dotted key."""
    reader = _Reader(path)
    reader.check_keys(document, _TOP_KEYS, "")
    accounts_table = reader.table(document, "accounts", "")
    accounts = {
        name: _parse_account(reader, name, reader.table(accounts_table, name, "accounts."))
        for name in accounts_table
    }
    aliases_table = reader.table(document, "aliases", "")
    aliases = {key: reader.string(aliases_table, key, "aliases.") or "" for key in aliases_table}
    default = reader.string(document, "default_account", "")
    if default is not None and default not in accounts:
        raise ConfigError(f"{path}: default_account = {default!r} names no [accounts.{default}]")
    for account in accounts.values():
        _check_fallback(reader, account, accounts)
    return Config(path, True, default, accounts, aliases, log=_log(reader, document, ""))


def _parse_account(reader: _Reader, name: str, table: Mapping[str, Any]) -> Account:
    prefix = f"accounts.{name}."
    reader.check_keys(table, _ACCOUNT_KEYS, prefix)
    fetch_table = reader.table(table, "fetch", prefix)
    reader.check_keys(fetch_table, _FETCH_KEYS, prefix + "fetch.")
    return Account(
        name=name,
        from_addr=_from(reader, table, prefix),
        user=reader.string(table, "user", prefix),
        domain=reader.string(table, "domain", prefix),
        password_command=reader.string(table, "password_command", prefix),
        smtp=_parse_server(reader, reader.table(table, "smtp", prefix), prefix + "smtp."),
        pop3=_parse_server(reader, reader.table(table, "pop3", prefix), prefix + "pop3."),
        fetch=FetchSettings(
            to=reader.string(fetch_table, "to", prefix + "fetch."),
            delete=reader.boolean(fetch_table, "delete", prefix + "fetch."),
            lmtp_rcpt=reader.string(fetch_table, "lmtp_rcpt", prefix + "fetch."),
            delete_after=_count(reader, fetch_table, "delete_after", prefix + "fetch."),
            delete_larger_than=_count(reader, fetch_table, "delete_larger_than", prefix + "fetch."),
            received_header=reader.boolean(fetch_table, "received_header", prefix + "fetch."),
            filter=reader.string(fetch_table, "filter", prefix + "fetch."),
        ),
        oauth2=_parse_oauth2(reader, table, prefix),
        **_smtp_extras(reader, table, prefix),
        fallback=_fallback(reader, table, prefix),
        log=_log(reader, table, prefix),
    )


def _count(reader: _Reader, table: Mapping[str, Any], key: str, prefix: str) -> int | None:
    """A whole number, zero or more (days, octets); None when absent."""
    value = table.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        reader.fail(prefix + key, "must be a whole number, 0 or more")
    return value


def _from(reader: _Reader, table: Mapping[str, Any], prefix: str) -> str | None:
    """A pattern (msmtp's: it holds `*`, `?` or `[`) must be a bare address pattern."""
    value = reader.string(table, "from", prefix)
    if value is None or not any(c in value for c in FROM_WILDCARDS):
        return value
    if value.count("@") != 1 or any(c in value for c in ' \t<>"(),;:'):
        reader.fail(prefix + "from", "a pattern must be a bare address, e.g. *@example.org")
    return value


def _log(reader: _Reader, table: Mapping[str, Any], prefix: str) -> str | None:
    target = reader.string(table, "log", prefix)
    if target is not None and not target.strip():
        reader.fail(prefix + "log", 'must be a file path or "syslog"')
    return target


def _fallback(reader: _Reader, table: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
    names = table.get("fallback", [])
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        reader.fail(prefix + "fallback", 'must be a list of account names, e.g. ["backup"]')
    if len(set(names)) != len(names):
        reader.fail(prefix + "fallback", "names an account twice")
    return tuple(names)


def _check_fallback(reader: _Reader, account: Account, accounts: Mapping[str, Account]) -> None:
    key = f"accounts.{account.name}.fallback"
    for name in account.fallback:
        if name == account.name:
            reader.fail(key, f"{name!r} is this account itself")
        if name not in accounts:
            reader.fail(key, f"{name!r} names no [accounts.{name}]")


def _smtp_extras(reader: _Reader, table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`ehlo`, `dsn_notify`, `dsn_return`. The name and the NOTIFY list are checked where
    they are used (endpoint resolution, smtp.dsn: 78 naming the key), by the rules the
    options follow."""
    return {
        "ehlo": reader.string(table, "ehlo", prefix),
        "dsn_notify": reader.string(table, "dsn_notify", prefix),
        "dsn_return": reader.choice(table, "dsn_return", prefix, ("full", "headers")),
    }


def _parse_oauth2(reader: _Reader, account: Mapping[str, Any], prefix: str) -> OAuthSettings | None:
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


def _scopes(reader: _Reader, table: Mapping[str, Any], prefix: str) -> tuple[str, ...] | None:
    scopes = table.get("scopes")
    if scopes is None:
        return None
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        reader.fail(
            prefix + "scopes", 'must be a list of strings, e.g. ["https://mail.google.com/"]'
        )
    return tuple(scopes)


def _parse_server(reader: _Reader, table: Mapping[str, Any], prefix: str) -> ServerSettings:
    reader.check_keys(table, _SERVER_KEYS, prefix)
    security = reader.string(table, "security", prefix)
    mode = security_mode(security)
    if security is not None and mode is None:
        reader.fail(prefix + "security", f"must be one of {', '.join(SECURITY_MODES)}")
    port = table.get("port")
    if port is not None and (type(port) is not int or not 0 < port < 65536):
        reader.fail(prefix + "port", "must be a port number (1-65535)")
    return ServerSettings(
        host=reader.string(table, "host", prefix),
        port=port,
        security=mode,
        user=reader.string(table, "user", prefix),
        auth=reader.string(table, "auth", prefix),
        cafile=reader.string(table, "cafile", prefix),
        family=reader.choice(table, "family", prefix, ADDRESS_FAMILIES),
        source_address=_ip_address(reader, table, prefix + "source_address"),
        proxy=_proxy_url(reader, table, prefix + "proxy"),
        client_cert=reader.string(table, "client_cert", prefix),
        client_key=reader.string(table, "client_key", prefix),
        tls_fingerprint=_fingerprints(reader, table, prefix + "tls_fingerprint"),
    )


def _fingerprints(reader: _Reader, table: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    """One pin or a list of them, each checked now (a typo is 78 naming the key)."""
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


def _ip_address(reader: _Reader, table: Mapping[str, Any], key: str) -> str | None:
    import ipaddress

    value = reader.string(table, "source_address", key.removesuffix("source_address"))
    try:
        return None if value is None else str(ipaddress.ip_address(value))
    except ValueError:
        reader.fail(key, f"{value!r} is not an IP address of this machine")


def _proxy_url(reader: _Reader, table: Mapping[str, Any], key: str) -> str | None:
    """A SOCKS5 URL or "env"; the URL is parsed when connecting (transport.socks, 78)."""
    value = reader.string(table, "proxy", key.removesuffix("proxy"))
    if value and value != "env" and not value.lower().startswith(("socks5://", "socks5h://")):
        reader.fail(key, 'must be a socks5:// or socks5h:// URL, or "env" (ALL_PROXY)')
    return value


_Choice = TypeVar("_Choice", bound=str)


class _Reader:
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


def add_account(config: Config, account: Account, *, make_default: bool) -> Path:
    """Add [accounts.NAME]; an existing account of that name is an error."""
    if account.name in config.accounts:
        raise ConfigError(
            f"{config.path}: account {account.name!r} already exists (key accounts.{account.name})",
            hint=f"remove it first with `mailcli account remove {account.name}`",
        )
    document = _load_document(config)
    import tomlkit

    accounts = document.setdefault("accounts", tomlkit.table(is_super_table=True))
    accounts[account.name] = _account_table(account)
    if make_default or not config.accounts:
        document["default_account"] = account.name
    _write(config.path, document)
    return config.path


def add_account_tables(
    config: Config,
    tables: Mapping[str, Mapping[str, Any]],
    *,
    replace: bool = False,
    default: str | None = None,
    write: bool = True,
) -> str:
    """Add [accounts.NAME] tables as given (`account import`), all in one atomic write
    after validating the whole file; an existing NAME is an error naming it unless
    `replace`. `default` becomes default_account when the file has none. Returns the
    new file's text (written only when `write`)."""
    taken = [] if replace else sorted(set(tables) & set(config.accounts))
    if taken:
        raise ConfigError(
            f"{config.path}: account {', '.join(map(repr, taken))} already exists "
            f"(key accounts.{taken[0]})",
            hint="--replace overwrites it, or rename or remove it first",
        )
    document = _load_document(config)
    import tomlkit

    accounts = document.setdefault("accounts", tomlkit.table(is_super_table=True))
    for name, table in tables.items():
        accounts[name] = table
    if default is not None and config.default_account is None:
        document["default_account"] = default
    if write:
        _write(config.path, document)
        return tomlkit.dumps(document)
    text = tomlkit.dumps(document)
    parse_config(tomlkit.parse(text).unwrap(), config.path)  # what would be written reads
    return text


def remove_account(config: Config, name: str) -> Path:
    """Remove [accounts.NAME] (and default_account when it named it)."""
    if name not in config.accounts:
        raise ConfigError(f"{config.path}: no account {name!r} (key accounts.{name})")
    document = _load_document(config)
    del document["accounts"][name]
    if document.get("default_account") == name:
        del document["default_account"]
    _write(config.path, document)
    return config.path


def _load_document(config: Config) -> Any:
    import tomlkit

    if not config.exists:
        return tomlkit.document()
    try:
        return tomlkit.parse(config.path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{config.path}: cannot read config file: {exc.strerror}") from exc
    except RecursionError:  # changed since it was read, to a file nested past the stack
        raise _too_deep(config.path) from None


def _account_table(account: Account) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in (
        ("from", account.from_addr),
        ("user", account.user),
        ("domain", account.domain),
        ("password_command", account.password_command),
    ):
        if value is not None:
            table[key] = value
    for protocol, server in (("smtp", account.smtp), ("pop3", account.pop3)):
        if server != ServerSettings():
            table[protocol] = _drop_none(server._asdict())
    if account.fetch.to is not None or account.fetch.delete:
        table["fetch"] = _drop_none(vars(account.fetch))
    if account.oauth2 is not None:
        oauth2 = _drop_none(account.oauth2._asdict())
        if "scopes" in oauth2:
            oauth2["scopes"] = list(oauth2["scopes"])
        table["oauth2"] = oauth2
    if account.fallback:
        table["fallback"] = list(account.fallback)
    return table


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _write(path: Path, document: Any) -> None:
    # Here, not at the top: fsutil imports secrets (hashlib, hmac, random), which reading
    # the config on every command's start-up does not need.
    import tomlkit

    from mailcli.fsutil import PRIVATE_DIR, atomic_write, write_error

    text = tomlkit.dumps(document)
    parse_config(tomlkit.parse(text).unwrap(), path)  # never write what we could not read
    try:
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        atomic_write(path, text.encode("utf-8"))
    except OSError as exc:
        raise write_error(exc, f"the config file {path}") from exc
