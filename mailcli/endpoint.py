"""Where to connect and how: command-line option > environment > config file > default.

The environment variables are per protocol, because `--host` means the SMTP server to
`send` and the POP3 server to `stat`: `MAILCLI_SMTP_HOST`, `MAILCLI_SMTP_PORT`,
`MAILCLI_SMTP_SECURITY`, `MAILCLI_SMTP_USER`, `MAILCLI_SMTP_TIMEOUT` (and the same with
`POP3`), plus `MAILCLI_USER` and `MAILCLI_PASSWORD_COMMAND` for both. The timeout
variable is how `sendmail` and `queue run`, which take no --timeout, get one.

An empty value means what msmtp's `--user=` means: where "none" is a meaningful value
(the user, the password command) a variable set to "" is none, and clears what the
lower layers say (so `MAILCLI_SMTP_USER=` sends without AUTH through an account that has
a user); `--user ''` likewise. Where "none" means nothing (host, port, security; and an
empty string must never select cleartext) an empty variable is unset: the next layer
applies. `MAILCLI_PASSWORD`, `MAILCLI_ACCOUNT` and `MAILCLI_CONFIG` empty are unset too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, get_args

from mailcli.errors import ConfigError, UsageError

MailProtocol = Literal["smtp", "pop3"]  # what an endpoint speaks: submission, or a mailbox
PROTOCOLS: tuple[MailProtocol, ...] = get_args(MailProtocol)
SecurityMode = Literal["tls", "starttls", "none"]  # implicit TLS, STARTTLS, cleartext
AddressFamily = Literal["ipv4", "ipv6"]  # -4/-6, key `family`: connect over this one only
ADDRESS_FAMILIES: tuple[AddressFamily, ...] = get_args(AddressFamily)
SECURITY_MODES: tuple[SecurityMode, ...] = ("tls", "starttls", "none")
DEFAULT_TIMEOUT = 30.0
MIN_TIMEOUT = 0.1  # as --timeout allows

# Well-known implicit-TLS ports: asking for one of these means TLS from the first byte.
_IMPLICIT_TLS_PORTS = {"smtp": 465, "pop3": 995}
_DEFAULT_PORTS = {
    "smtp": {"tls": 465, "starttls": 587, "none": 25},
    "pop3": {"tls": 995, "starttls": 110, "none": 110},
}


def security_mode(value: str | None) -> SecurityMode | None:
    """`value` as a security mode, or None when it names none (validated by the caller)."""
    return next((mode for mode in SECURITY_MODES if mode == value), None)


def default_security(protocol: MailProtocol, port: int | None) -> SecurityMode:
    """`tls` on the implicit-TLS port, else `starttls`. `none` is never a default."""
    return "tls" if port == _IMPLICIT_TLS_PORTS[protocol] else "starttls"


def default_port(protocol: MailProtocol, security: SecurityMode) -> int:
    return _DEFAULT_PORTS[protocol][security]


class ConnectionOptions(NamedTuple):
    """What the command line said; None means "not given". NamedTuples (this and
    `Endpoint`): every network command builds the classes at import, and a frozen
    dataclass costs ~0.7 ms to build (start-up)."""

    host: str | None = None
    port: int | None = None
    security: SecurityMode | None = None
    user: str | None = None
    auth: str | None = None
    cafile: str | None = None
    insecure: bool = False
    timeout: float | None = None
    password_command: str | None = None
    ehlo: str | None = None  # --ehlo: the name EHLO gives (SMTP)
    family: AddressFamily | None = None
    source_address: str | None = None  # bind to this local IP before connecting
    proxy: str | None = None  # socks5://host:port or socks5h://; never with a password here
    client_cert: str | None = None  # PEM: our certificate (and its key, unless client_key)
    client_key: str | None = None
    tls_fingerprint: tuple[str, ...] | None = None  # pins: the server's leaf must match one


class ServerSettings(NamedTuple):
    """One server table of an account ([accounts.NAME.smtp] or .pop3); None = unset.
    Here, not in mailcli.config: a run without a config file resolves its endpoint
    against `ServerSettings()` without importing that module."""

    host: str | None = None
    port: int | None = None
    security: SecurityMode | None = None
    user: str | None = None
    auth: str | None = None
    cafile: str | None = None  # trust this CA bundle (PEM) for the server's certificate
    family: AddressFamily | None = None
    source_address: str | None = None
    proxy: str | None = None  # a SOCKS5 URL (may hold a password), or "env": $ALL_PROXY
    client_cert: str | None = None  # PEM, ~ and relative paths expanded as cafile's
    client_key: str | None = None
    tls_fingerprint: tuple[str, ...] | None = None  # "SHA256:..." as `check` prints them

    def __repr__(self) -> str:
        return _repr_without_proxy(self)


_NO_SERVER = ServerSettings()

if TYPE_CHECKING:  # a type only: nothing to build at start-up

    class AccountSettings(Protocol):
        """What resolving an endpoint reads of an account (`mailcli.config.Account`),
        named here so that this module needs nothing from mailcli.config."""

        @property
        def name(self) -> str: ...

        @property
        def user(self) -> str | None: ...

        @property
        def password_command(self) -> str | None: ...

        def server(self, protocol: MailProtocol) -> ServerSettings: ...

        @property
        def ehlo(self) -> str | None: ...

        @property
        def domain(self) -> str | None: ...


class Endpoint(NamedTuple):
    """A fully resolved server to talk to."""

    protocol: MailProtocol
    host: str
    port: int
    security: SecurityMode
    user: str | None
    auth: str | None
    cafile: str | None
    insecure: bool
    timeout: float
    password_command: str | None
    account: str | None
    user_cleared_by: str | None = None  # the setting that was empty, making user None
    ehlo: str | None = None  # SMTP: the EHLO name given (--ehlo, key `ehlo`), else None
    domain: str | None = None  # the account's domain: the EHLO name's fallback
    family: AddressFamily | None = None
    source_address: str | None = None
    proxy: str | None = None  # the SOCKS5 URL, password included: never shown (socks.py)
    client_cert: str | None = None
    client_key: str | None = None
    tls_fingerprint: tuple[str, ...] | None = None  # pinned SHA-256 digests (tlsinfo)
    # An encrypted client key's passphrase, asked for only if OpenSSL needs it: the CLI
    # sets it to its own credential chain (cli/context.py); None: an encrypted key is 78.
    client_key_passphrase: Callable[[], str] | None = None

    def __repr__(self) -> str:
        return _repr_without_proxy(self)

    @property
    def credential_key(self) -> str:
        """The keyring username: USER@HOST (service name `mailcli`)."""
        return f"{self.user}@{self.host}"

    @property
    def where(self) -> str:
        """The server as every message, transcript line and log record names it:
        HOST:PORT, an IPv6 literal in brackets (`host_port`)."""
        return host_port(self.host, self.port)


def _repr_without_proxy(value: ServerSettings | Endpoint) -> str:
    """A NamedTuple's repr with `proxy` as '(set)': its URL may hold a password."""
    fields = value._asdict()
    if fields["proxy"] is not None:
        fields["proxy"] = "(set)"
    shown = ", ".join(f"{name}={item!r}" for name, item in fields.items())
    return f"{type(value).__name__}({shown})"


def resolve_endpoint(
    protocol: MailProtocol,
    account: AccountSettings | None,
    options: ConnectionOptions,
    environ: Mapping[str, str] = os.environ,
) -> Endpoint:
    """Merge the three layers; a missing host is a configuration error naming the fixes."""
    server = account.server(protocol) if account else _NO_SERVER
    env = _EnvLayer(protocol, environ)
    host = bare_host(options.host or env.get("HOST") or server.host or "")
    if not host:
        raise ConfigError(
            f"no {protocol.upper()} host given",
            hint=f"use --host, set MAILCLI_{protocol.upper()}_HOST, or set host in "
            f"[accounts.NAME.{protocol}] of the config file",
        )
    port = options.port or env.port() or server.port
    security = options.security or env.security() or server.security
    security = security or default_security(protocol, port)
    user, user_source = _first_set(
        ("--user", options.user),
        (env.name("USER"), env.optional("USER")),
        (f"{protocol}.user", server.user),
        ("MAILCLI_USER", env.optional_generic("USER")),
        ("user", account.user if account else None),
    )
    password_command = resolve_password_command(account, options.password_command, environ)
    return Endpoint(
        protocol=protocol,
        host=host,
        port=port or default_port(protocol, security),
        security=security,
        user=user,
        auth=options.auth or server.auth,
        cafile=options.cafile or _expand(server.cafile),
        insecure=options.insecure,
        timeout=options.timeout if options.timeout is not None else env.timeout(),
        password_command=password_command,
        account=account.name if account else None,
        user_cleared_by=user_source if user_source and not user else None,
        ehlo=_given_ehlo(options.ehlo, account),
        domain=account.domain if account else None,
        family=options.family or server.family,
        source_address=options.source_address or server.source_address,
        proxy=_proxy(options.proxy, server.proxy, environ),
        client_cert=options.client_cert or _expand(server.client_cert),
        client_key=options.client_key or _expand(server.client_key),
        tls_fingerprint=options.tls_fingerprint or server.tls_fingerprint,
    )


def bare_host(host: str) -> str:
    """`[::1]` as `::1`: the brackets only delimit an IPv6 literal in a URL or a
    transcript; resolving, and TLS's check of the certificate's IP address, want it bare."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def host_port(host: str, port: int) -> str:
    """HOST:PORT as people and URLs write it: an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proxy(option: str | None, setting: str | None, environ: Mapping[str, str]) -> str | None:
    """The proxy URL: --proxy > the server's `proxy` key; `proxy = "env"` reads ALL_PROXY
    (all_proxy), and only then: a stray ALL_PROXY must not reroute mail unasked."""
    if option is not None:
        return option or None
    if setting == "env":
        return environ.get("ALL_PROXY") or environ.get("all_proxy") or None
    return setting or None


def _given_ehlo(option: str | None, account: AccountSettings | None) -> str | None:
    """--ehlo (64 when EHLO cannot carry it), else the account's `ehlo` (78)."""
    if option is not None:
        if (problem := ehlo_problem(option)) is not None:
            raise UsageError(f"--ehlo {option!r} cannot be an EHLO name: {problem}")
        return option
    name = account.ehlo if account else None
    if account is not None and name is not None and (problem := ehlo_problem(name)) is not None:
        raise ConfigError(
            f"accounts.{account.name}.ehlo: {name!r} cannot be an EHLO name: {problem}"
        )
    return name


def ehlo_problem(name: str) -> str | None:
    """Why `name` cannot be given in EHLO, or None when it can. RFC 5321 4.1.2's
    `Domain / address-literal`: dot-separated labels of ASCII letters, digits, hyphens
    (and underscores, which real host names carry and servers accept), each 1 to 63
    long, 255 in all; or `[192.0.2.1]`, `[IPv6:2001:db8::1]`."""
    import re

    if not name:
        return "it is empty"
    if not name.isascii():
        return "it is not ASCII (give the domain's A-label, xn--...)"
    if not name.isprintable():
        return "it contains a control character"
    if " " in name:
        return "it contains a space"
    if name.startswith("["):
        return _literal_problem(name)
    if len(name) > 255 or not re.fullmatch(_EHLO_DOMAIN, name):
        return "it is not a domain name (labels of letters, digits and hyphens) nor [address]"
    return None


_EHLO_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_EHLO_DOMAIN = rf"{_EHLO_LABEL}(?:\.{_EHLO_LABEL})*"


def _literal_problem(name: str) -> str | None:
    import ipaddress

    inside = name[1:-1] if name.endswith("]") else ""
    try:
        if inside[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inside[5:])
        else:
            ipaddress.IPv4Address(inside)
    except ValueError:
        return "it is not an address literal such as [192.0.2.1] or [IPv6:2001:db8::1]"
    return None


def resolve_password_command(
    account: AccountSettings | None,
    option: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> str | None:
    """The password command a login uses: --password-command > MAILCLI_PASSWORD_COMMAND >
    the account's `password_command`; "" at any layer is none and hides the layers below.
    The one place that says so: `password where` asks it too."""
    command, _ = _first_set(
        ("--password-command", option),
        ("MAILCLI_PASSWORD_COMMAND", environ.get("MAILCLI_PASSWORD_COMMAND")),
        ("password_command", account.password_command if account else None),
    )
    return command


def missing_user(endpoint: Endpoint) -> ConfigError:
    """The error for a login without a user name, naming the empty setting if one
    cleared it (78: missing configuration)."""
    protocol = endpoint.protocol.upper()
    cleared = endpoint.user_cleared_by
    return ConfigError(
        f"{protocol} needs a user name" + (f": {cleared} is set and empty" if cleared else ""),
        hint=f"give --user, set MAILCLI_{protocol}_USER, or set user in the account",
    )


def _first_set(*layers: tuple[str, str | None]) -> tuple[str | None, str | None]:
    """The first layer that says anything, as (value, where it came from): "" is a
    value, none, and stops the search; None is silence. (None, None) when none speaks."""
    for source, value in layers:
        if value is not None:
            return value or None, source
    return None, None


class _EnvLayer:
    """Reads MAILCLI_<PROTO>_<KEY> and MAILCLI_<KEY>, validating as the file does."""

    def __init__(self, protocol: MailProtocol, environ: Mapping[str, str]) -> None:
        self.prefix = f"MAILCLI_{protocol.upper()}_"
        self.environ = environ

    def name(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> str | None:
        """A setting where empty is unset (host, port, security)."""
        return self.environ.get(self.prefix + key) or None

    def optional(self, key: str) -> str | None:
        """A setting where empty means none: "" is returned, None only when unset."""
        return self.environ.get(self.prefix + key)

    def optional_generic(self, key: str) -> str | None:
        return self.environ.get("MAILCLI_" + key)

    def port(self) -> int | None:
        value = self.get("PORT")
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
            raise ConfigError(f"environment: {self.prefix}PORT={value!r} is not a port number")
        return int(value)

    def timeout(self) -> float:
        value = self.get("TIMEOUT")
        if value is None:
            return DEFAULT_TIMEOUT
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0
        if not MIN_TIMEOUT <= seconds < float("inf"):
            raise ConfigError(
                f"environment: {self.prefix}TIMEOUT={value!r} is not a number of seconds "
                f"(at least {MIN_TIMEOUT:g})"
            )
        return seconds

    def security(self) -> SecurityMode | None:
        value = self.get("SECURITY")
        mode = security_mode(value)
        if value is not None and mode is None:
            choices = ", ".join(SECURITY_MODES)
            raise ConfigError(f"environment: {self.prefix}SECURITY must be one of {choices}")
        return mode


def _expand(path: str | None) -> str | None:
    return os.path.expanduser(path) if path else None
