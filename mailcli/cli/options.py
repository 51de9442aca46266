"""Reusable option sets: the global flags (accepted after the command name too) and
the connection options every network command takes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _set_global(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Store a flag on the AppContext when given; absent flags leave the group's value."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        from mailcli.cli.context import AppContext

        if value not in (None, False):
            setattr(ctx.ensure_object(AppContext), attribute, value)

    return callback


def _global_specs(*, for_group: bool) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    envvar = "MAILCLI_ACCOUNT" if for_group else None
    return [
        (
            ("-a", "--account"),
            "account_name",
            {"metavar": "NAME", "envvar": envvar, "help": "Account from the config file."},
        ),
        (("--json",), "json", {"is_flag": True, "help": "One JSON document on stdout."}),
        (
            ("--trace",),
            "trace",
            {"is_flag": True, "help": "Show the protocol conversation on stderr."},
        ),
        (("--trace-data",), "trace_data", {"is_flag": True, "help": "Trace message bodies too."}),
        (
            ("--trace-time",),
            "trace_time",
            {"is_flag": True, "help": "Trace with seconds since connect."},
        ),
        (("-q", "--quiet"), "quiet", {"is_flag": True, "help": "Print errors only."}),
    ]


def _global_option_list(*, for_group: bool) -> list[click.Option]:
    return [
        click.Option(
            list(names), expose_value=False, is_eager=True, callback=_set_global(attribute), **extra
        )
        for names, attribute, extra in _global_specs(for_group=for_group)
    ]


def global_options(function: F) -> F:
    """`-a`, `--json`, `--trace[-data|-time]`, `-q` on the group (`-a` also from
    $MAILCLI_ACCOUNT); `add_global_options` gives each command the same flags."""
    for names, attribute, extra in reversed(_global_specs(for_group=True)):
        function = click.option(
            *names, expose_value=False, is_eager=True, callback=_set_global(attribute), **extra
        )(function)
    return function


def add_global_options(command: click.Command) -> None:
    """The global flags after the command name too, so `mailcli list --json` and
    `mailcli --json list` mean the same: added by the group to each command it loads
    (and to the subcommands of `account`, `password`, `queue`), once, after their own."""
    if getattr(command, "_mailcli_global_options", False):
        return
    command._mailcli_global_options = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            add_global_options(subcommand)
        return
    # A command may define a global flag its own way (fetch's repeatable -a): its own wins.
    taken = {name for param in command.params for name in param.opts}
    extra = [p for p in _global_option_list(for_group=False) if not taken & set(p.opts)]
    command.params = [*command.params, *extra]


def _connection_option_list() -> list[Callable[[Any], Any]]:
    # Imported here, not at the top: the group imports this module for --help/--version.
    from mailcli.endpoint import SECURITY_MODES

    return [
        click.option("--host", help="Server host name or address."),
        click.option("--port", type=click.IntRange(1, 65535), help="Server port."),
        click.option(
            "--security",
            type=click.Choice(SECURITY_MODES),
            help="tls (implicit), starttls, or none (cleartext).",
        ),
        click.option("--user", help="Login name."),
        click.option("--auth", metavar="MECH", help="Force an authentication mechanism."),
        click.option(
            "--cafile",
            type=click.Path(dir_okay=False),  # a str: no pathlib on the start-up path
            help="Trust only this CA bundle (PEM), not the system's.",
        ),
        click.option(
            "--insecure", is_flag=True, help="Do not verify the server's certificate (warns)."
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            metavar="SECONDS",
            help="Network timeout (default 30).",
        ),
        click.option(
            "--password-command",
            metavar="CMD",
            help="Command whose first output line is the password.",
        ),
        click.option("-4", "--ipv4", "family", flag_value="ipv4", help="Connect over IPv4 only."),
        click.option("-6", "--ipv6", "family", flag_value="ipv6", help="Connect over IPv6 only."),
        click.option(
            "--source-address",
            metavar="IP",
            callback=ip_address,
            help="Connect from this local address.",
        ),
        click.option(
            "--proxy",
            metavar="URL",
            callback=_proxy_url,
            help="Connect through this SOCKS5 proxy: socks5://HOST:PORT, or socks5h:// "
            "to let the proxy resolve the server's name (a password: in the config only).",
        ),
        click.option(
            "--client-cert",
            type=click.Path(dir_okay=False),
            help="Present this TLS client certificate (PEM; with its key unless --client-key).",
        ),
        click.option(
            "--client-key", type=click.Path(dir_okay=False), help="The client certificate's key."
        ),
        click.option(
            "--tls-fingerprint",
            metavar="SHA256:HEX",
            multiple=True,
            callback=_fingerprints,
            help="Trust the server's certificate only if its SHA-256 fingerprint (as `check` "
            "prints it) is this one, CA or not (repeatable).",
        ),
    ]


def _fingerprints(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The pins, each checked (a typo is a usage error); None when none was given."""
    if not values:
        return None
    from mailcli.tlsinfo import parse_fingerprint

    for value in values:
        try:
            parse_fingerprint(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


def ip_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An IPv4 or IPv6 address, as written canonically."""
    if value is None:  # click calls this for every run: most never give the option
        return None
    import ipaddress

    try:
        return str(ipaddress.ip_address(value.removeprefix("[").removesuffix("]")))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address") from None


def _proxy_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A valid SOCKS5 URL without a password: the command line is visible to every user
    of the machine (ps), so the password belongs in the config file's `proxy` key."""
    if not value:
        return value
    from mailcli.errors import MailcliError
    from mailcli.transport.socks import parse_proxy_url

    try:
        proxy = parse_proxy_url(value)
    except MailcliError as exc:
        raise click.BadParameter(exc.message) from None
    if proxy.password is not None:
        raise click.BadParameter(
            "a proxy password on the command line is visible to every user of this "
            'machine: put the URL in the config file\'s proxy key (or proxy = "env" and '
            "ALL_PROXY)"
        )
    return value


def connection_options(function: F) -> F:
    """Adds the connection options and hands the command one `connection` argument."""
    from mailcli.endpoint import ConnectionOptions

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> object:
        names = ConnectionOptions._fields
        values = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        values["cafile"] = values["cafile"] or None
        return function(*args, connection=ConnectionOptions(**values), **kwargs)

    decorated: Any = wrapper
    for option in reversed(_connection_option_list()):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def quit_after_option(phases: tuple[str, ...]) -> Callable[[F], F]:
    """`--quit-after PHASE`: end the session cleanly (QUIT) after that phase."""
    return click.option(
        "--quit-after",
        type=click.Choice(phases),
        expose_value=False,
        callback=_set_global("quit_after"),
        help=f"Stop with QUIT after this phase: {', '.join(phases)}.",
    )
