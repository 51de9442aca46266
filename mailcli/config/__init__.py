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

Here: the file (where it is, reading it), its top level and accounts (`Config`,
`Account`), and the edits. The tables inside an account (server, fetch, oauth2) and the
typed getters (`Reader`) are in `mailcli.config.tables`, which needs nothing from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Re-exported, so that `from mailcli.config import ...` names everything in the file:
# the records of an account's tables, from mailcli.config.tables, and the connection
# vocabulary (security modes, default ports and timeout) from mailcli.endpoint, which a
# run without a config file imports without this package (its dataclasses and pathlib).
from mailcli.config.tables import DEFAULT_TOKEN_STORE as DEFAULT_TOKEN_STORE
from mailcli.config.tables import FETCH_KEYS, Reader, parse_fetch, parse_oauth2, parse_server
from mailcli.config.tables import OAUTH2_PROVIDERS as OAUTH2_PROVIDERS
from mailcli.config.tables import TOKEN_STORES as TOKEN_STORES
from mailcli.config.tables import FetchSettings as FetchSettings
from mailcli.config.tables import OAuthProvider as OAuthProvider
from mailcli.config.tables import OAuthSettings as OAuthSettings
from mailcli.config.tables import TokenStoreKind as TokenStoreKind
from mailcli.endpoint import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from mailcli.endpoint import SECURITY_MODES as SECURITY_MODES
from mailcli.endpoint import MailProtocol, ServerSettings
from mailcli.endpoint import SecurityMode as SecurityMode
from mailcli.endpoint import default_port as default_port
from mailcli.endpoint import default_security as default_security
from mailcli.endpoint import security_mode as security_mode
from mailcli.errors import ConfigError

_ACCOUNT_KEYS = {"from", "user", "domain", "password_command", "smtp", "pop3", "fetch", "oauth2"}
_ACCOUNT_KEYS |= {"ehlo", "dsn_notify", "dsn_return"}  # SMTP EHLO name, RFC 3461 defaults
_ACCOUNT_KEYS |= {"fallback"}  # accounts to try when this one's SMTP server cannot take it
_ACCOUNT_KEYS |= {"log"}  # the trail: a file path or "syslog" (mailcli.trail)
# A `from` holding one of these is a shell glob that chooses the account by the sender
# (msmtp's rule; mailcli.sendmail.choice matches it), not an address to send as.
FROM_WILDCARDS = ("*", "?", "[")
_TOP_KEYS = {"default_account", "accounts", "aliases"}
_TOP_KEYS |= {"log"}  # the trail of every account without its own


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
    reader = Reader(path)
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


def _parse_account(reader: Reader, name: str, table: Mapping[str, Any]) -> Account:
    prefix = f"accounts.{name}."
    reader.check_keys(table, _ACCOUNT_KEYS, prefix)
    fetch_table = reader.table(table, "fetch", prefix)
    reader.check_keys(fetch_table, FETCH_KEYS, prefix + "fetch.")  # before any value
    return Account(
        name=name,
        from_addr=_from(reader, table, prefix),
        user=reader.string(table, "user", prefix),
        domain=reader.string(table, "domain", prefix),
        password_command=reader.string(table, "password_command", prefix),
        smtp=parse_server(reader, reader.table(table, "smtp", prefix), prefix + "smtp."),
        pop3=parse_server(reader, reader.table(table, "pop3", prefix), prefix + "pop3."),
        fetch=parse_fetch(reader, fetch_table, prefix + "fetch."),
        oauth2=parse_oauth2(reader, table, prefix),
        **_smtp_extras(reader, table, prefix),
        fallback=_fallback(reader, table, prefix),
        log=_log(reader, table, prefix),
    )


def _from(reader: Reader, table: Mapping[str, Any], prefix: str) -> str | None:
    """A pattern (msmtp's: it holds `*`, `?` or `[`) must be a bare address pattern."""
    value = reader.string(table, "from", prefix)
    if value is None or not any(c in value for c in FROM_WILDCARDS):
        return value
    if value.count("@") != 1 or any(c in value for c in ' \t<>"(),;:'):
        reader.fail(prefix + "from", "a pattern must be a bare address, e.g. *@example.org")
    return value


def _log(reader: Reader, table: Mapping[str, Any], prefix: str) -> str | None:
    target = reader.string(table, "log", prefix)
    if target is not None and not target.strip():
        reader.fail(prefix + "log", 'must be a file path or "syslog"')
    return target


def _fallback(reader: Reader, table: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
    names = table.get("fallback", [])
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        reader.fail(prefix + "fallback", 'must be a list of account names, e.g. ["backup"]')
    if len(set(names)) != len(names):
        reader.fail(prefix + "fallback", "names an account twice")
    return tuple(names)


def _check_fallback(reader: Reader, account: Account, accounts: Mapping[str, Account]) -> None:
    key = f"accounts.{account.name}.fallback"
    for name in account.fallback:
        if name == account.name:
            reader.fail(key, f"{name!r} is this account itself")
        if name not in accounts:
            reader.fail(key, f"{name!r} names no [accounts.{name}]")


def _smtp_extras(reader: Reader, table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """`ehlo`, `dsn_notify`, `dsn_return`. The name and the NOTIFY list are checked where
    they are used (endpoint resolution, smtp.dsn: 78 naming the key), by the rules the
    options follow."""
    return {
        "ehlo": reader.string(table, "ehlo", prefix),
        "dsn_notify": reader.string(table, "dsn_notify", prefix),
        "dsn_return": reader.choice(table, "dsn_return", prefix, ("full", "headers")),
    }


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
    aliases: Mapping[str, str] = {},
) -> str:
    """Add [accounts.NAME] tables as given (`account import`), all in one atomic write
    after validating the whole file; an existing NAME is an error naming it unless
    `replace`. `default` becomes default_account when the file has none; `aliases` are
    set in [aliases] in the same write (the caller decides which may overwrite). Returns
    the new file's text (written only when `write`)."""
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
    if aliases:
        document.setdefault("aliases", tomlkit.table()).update(aliases)
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
