"""Where to connect and how: command-line option > environment > config file > default.

The environment variables are per protocol, because `--host` means the SMTP server to
`send` and the POP3 server to `stat`: `MAILCLI_SMTP_HOST`, `MAILCLI_SMTP_PORT`,
`MAILCLI_SMTP_SECURITY`, `MAILCLI_SMTP_USER` (and the same with `POP3`), plus
`MAILCLI_USER` and `MAILCLI_PASSWORD_COMMAND` for both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mailcli.config import (
    DEFAULT_TIMEOUT,
    SECURITY_MODES,
    Account,
    ServerSettings,
    default_port,
    default_security,
)
from mailcli.errors import ConfigError


@dataclass(frozen=True)
class ConnectionOptions:
    """What the command line said; None means "not given"."""

    host: str | None = None
    port: int | None = None
    security: str | None = None
    user: str | None = None
    auth: str | None = None
    cafile: str | None = None
    insecure: bool = False
    timeout: float | None = None
    password_command: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """A fully resolved server to talk to."""

    protocol: str
    host: str
    port: int
    security: str
    user: str | None
    auth: str | None
    cafile: str | None
    insecure: bool
    timeout: float
    password_command: str | None
    account: str | None

    @property
    def credential_key(self) -> str:
        """The keyring username: USER@HOST (service name `mailcli`)."""
        return f"{self.user}@{self.host}"


def resolve_endpoint(
    protocol: str,
    account: Account | None,
    options: ConnectionOptions,
    environ: Mapping[str, str] = os.environ,
) -> Endpoint:
    """Merge the three layers; a missing host is a configuration error naming the fixes."""
    server = account.server(protocol) if account else ServerSettings()
    env = _EnvLayer(protocol, environ)
    host = options.host or env.get("HOST") or server.host
    if not host:
        raise ConfigError(
            f"no {protocol.upper()} host given",
            hint=f"use --host, set MAILCLI_{protocol.upper()}_HOST, or set host in "
            f"[accounts.NAME.{protocol}] of the config file",
        )
    port = options.port or env.port() or server.port
    security = options.security or env.security() or server.security
    security = security or default_security(protocol, port)
    user = options.user or env.get("USER") or server.user or env.generic("USER")
    user = user or (account.user if account else None)
    password_command = options.password_command or env.generic("PASSWORD_COMMAND")
    password_command = password_command or (account.password_command if account else None)
    return Endpoint(
        protocol=protocol,
        host=host,
        port=port or default_port(protocol, security),
        security=security,
        user=user,
        auth=options.auth or server.auth,
        cafile=options.cafile or _expand(server.cafile),
        insecure=options.insecure,
        timeout=options.timeout if options.timeout is not None else DEFAULT_TIMEOUT,
        password_command=password_command,
        account=account.name if account else None,
    )


class _EnvLayer:
    """Reads MAILCLI_<PROTO>_<KEY> and MAILCLI_<KEY>, validating as the file does."""

    def __init__(self, protocol: str, environ: Mapping[str, str]) -> None:
        self.prefix = f"MAILCLI_{protocol.upper()}_"
        self.environ = environ

    def get(self, key: str) -> str | None:
        return self.environ.get(self.prefix + key) or None

    def generic(self, key: str) -> str | None:
        return self.environ.get("MAILCLI_" + key) or None

    def port(self) -> int | None:
        value = self.get("PORT")
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
            raise ConfigError(f"environment: {self.prefix}PORT={value!r} is not a port number")
        return int(value)

    def security(self) -> str | None:
        value = self.get("SECURITY")
        if value is not None and value not in SECURITY_MODES:
            choices = ", ".join(SECURITY_MODES)
            raise ConfigError(f"environment: {self.prefix}SECURITY must be one of {choices}")
        return value


def _expand(path: str | None) -> str | None:
    return os.path.expanduser(path) if path else None
