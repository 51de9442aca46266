"""`account add` and `account remove`: edit the config file, keeping the user's comments.

tomlkit round-trips the document (comments, order, formatting), so a hand-written
file stays recognisable after mailcli edits it. The edited text is validated with the
same parser that reads it, then replaced durably (0600: the file names servers and
users, though it never holds a password).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailcli.config import Account, Config, ServerSettings, parse_config
from mailcli.errors import ConfigError
from mailcli.fsutil import PRIVATE_DIR, atomic_write, write_error


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
            table[protocol] = _drop_none(vars(server))
    if account.fetch.to is not None or account.fetch.delete:
        table["fetch"] = _drop_none(vars(account.fetch))
    return table


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _write(path: Path, document: Any) -> None:
    import tomlkit

    text = tomlkit.dumps(document)
    parse_config(tomlkit.parse(text).unwrap(), path)  # never write what we could not read
    try:
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        atomic_write(path, text.encode("utf-8"))
    except OSError as exc:
        raise write_error(exc, f"the config file {path}") from exc
