"""The `mailcli` group and the one place where errors become exit codes.

mailcli.errors is imported only when a run fails, by the functions that turn the failure
into its status: a run that succeeds (`--version`, `--help`) never loads it.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, NamedTuple, NoReturn

import click

from mailcli import __version__
from mailcli.cli import signals
from mailcli.cli.context import AppContext
from mailcli.cli.options import add_global_options, global_options

if TYPE_CHECKING:
    from mailcli.cli.stdio import StandardStreams
    from mailcli.render import Renderer


class CommandInfo(NamedTuple):
    """Where a command lives and what the group says of it without importing it.

    `summary` is the one source of the command's one-line help: the group lists it
    without importing any command module (`mailcli --help` stays fast), and
    `get_command` hands it to click as the command's `short_help` (what shell completion
    shows too). Commands are imported only when they run. `global_options` is False for
    `sendmail`, which parses its own arguments (sendmail's, not ours), and `completion`,
    which prints a script: neither takes the global flags after its name."""

    module: str
    attribute: str  # a click.Command, or a POP3 command built on demand (cli/pop3)
    summary: str
    global_options: bool = True


_COMMANDS = {
    "account": CommandInfo(
        "mailcli.cli.account", "account", "Manage the accounts in the config file."
    ),
    "password": CommandInfo(
        "mailcli.cli.password", "password", "Store, remove or locate a password."
    ),
    "send": CommandInfo("mailcli.cli.send", "send", "Compose and submit one message over SMTP."),
    "sendmail": CommandInfo(
        "mailcli.cli.sendmail",
        "sendmail",
        "sendmail-compatible front end (cron).",
        global_options=False,
    ),
    "queue": CommandInfo("mailcli.cli.sendmail", "queue", "List, retry or remove queued messages."),
    "stat": CommandInfo("mailcli.cli.pop3", "stat", "POP3: message count and total octets."),
    "list": CommandInfo("mailcli.cli.pop3", "list_command", "POP3: messages with sizes and UIDs."),
    "uidl": CommandInfo("mailcli.cli.pop3", "uidl", "POP3: unique ids of the messages."),
    "top": CommandInfo(
        "mailcli.cli.pop3", "top", "POP3: headers and the first lines of a message."
    ),
    "retr": CommandInfo("mailcli.cli.pop3", "retr", "POP3: a message's bytes, streamed."),
    "dele": CommandInfo("mailcli.cli.pop3", "dele", "POP3: delete messages (on QUIT)."),
    "rset": CommandInfo("mailcli.cli.pop3", "rset", "POP3: RSET and QUIT, with the answers."),
    "capa": CommandInfo("mailcli.cli.pop3", "capa", "POP3: the server's capabilities."),
    "shell": CommandInfo("mailcli.cli.shell", "shell", "POP3: an interactive session."),
    "fetch": CommandInfo(
        "mailcli.cli.fetch", "fetch", "POP3: download new mail into Maildir/mbox/MDA."
    ),
    "check": CommandInfo(
        "mailcli.cli.check", "check", "Report what an SMTP or POP3 server offers."
    ),
    "oauth": CommandInfo(
        "mailcli.cli.oauth", "oauth", "Log in with OAuth2; show, print or forget tokens."
    ),
    "completion": CommandInfo(
        "mailcli.cli.completion",
        "completion",
        "Print the shell completion script (bash, zsh, fish).",
        global_options=False,
    ),
}


class _EscapedPipeError(Exception):
    """An EPIPE that is not stdout's (those are errors.Stopped): carried past click,
    which would otherwise turn it into a silent exit 1, to the bug report (70)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise _EscapedPipeError(exc) from exc
            raise

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        info = _COMMANDS.get(cmd_name)
        if info is None:
            return None
        module = __import__(info.module, fromlist=[info.attribute])
        found = getattr(module, info.attribute)
        command: click.Command = found if isinstance(found, click.Command) else found.build()
        command.short_help = info.summary
        if info.global_options:
            add_global_options(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, info.summary) for name, info in sorted(_COMMANDS.items())])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mailcli", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),  # a str: pathlib is imported when the file is read
    envvar="MAILCLI_CONFIG",
    help="Config file (default ~/.config/mailcli/config.toml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@global_options
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Send mail over SMTP and work POP3 mailboxes: a scriptable telnet for mail."""
    app = ctx.ensure_object(AppContext)  # main() passes one in; a bare cli.main() gets one
    app.config_path = config_path
    app.debug = debug


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and translate every outcome into an exit status. Invoked through a
    link named `sendmail`, every argument belongs to the sendmail command."""
    _reserve_standard_descriptors()
    signals.stop_on_signals()
    args = sys.argv[1:] if argv is None else argv
    if argv is None and os.path.basename(sys.argv[0]) == "sendmail":
        args = ["sendmail", *args]
    try:
        status = _run(args)
        signals.ignore_stop_signals()  # the run is over: a late signal changes nothing
    except BaseException as exc:  # a signal that landed while the run was ending
        status = _signal_status(exc)
    sys.exit(status)


def _run(args: list[str]) -> int:
    """One run, its standard streams guarded (mailcli.cli.stdio)."""
    from mailcli.cli.stdio import StandardStreams

    with StandardStreams() as streams:
        try:
            return _run_guarded(args, streams)
        except BaseException as exc:  # SIGTERM, SIGHUP, stdout's reader gone: cleaned up
            return _signal_status(exc)


def _signal_status(exc: BaseException) -> int:
    """128 + the signal that ended the run (errors.Stopped, KeyboardInterrupt); any
    other BaseException goes on."""
    from mailcli.errors import ExitStatus, Stopped

    if isinstance(exc, Stopped):
        return int(exc.exit_status)
    if isinstance(exc, KeyboardInterrupt):
        return int(ExitStatus.INTERRUPTED)
    raise exc


def _run_guarded(args: list[str], streams: StandardStreams) -> int:
    """`--debug` and `-q` are read from the AppContext click filled in, so a `-q` that
    is some option's value (`--subject -q`) is not taken for the flag."""
    app = AppContext()
    try:
        result = cli.main(args=args, prog_name="mailcli", standalone_mode=False, obj=app)
        streams.flush()  # buffered data fails here, while the failure is still ours
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _interrupted()
    except click.exceptions.ClickException as exc:
        return _usage_error(app, exc)
    except _EscapedPipeError as exc:
        return failed(app, exc.error)
    except Exception as exc:
        return failed(app, exc)
    return _exit_code(result)


def _reserve_standard_descriptors() -> None:
    """A closed descriptor 0, 1 or 2 (`mailcli list >&-`) gets /dev/null: the next file
    or socket opened would otherwise take its number, and be written to as stdout or
    handed to a child as one. Python saw it closed already (sys.stdout is None), so
    writing data there is still an error (74, mailcli.cli.stdio)."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if devnull != descriptor:
                os.dup2(devnull, descriptor)
                os.close(devnull)
            os.set_inheritable(descriptor, True)


def failed(app: AppContext, exc: Exception) -> int:
    """A MailcliError becomes its exit status and one line; anything else is a bug (70)."""
    from mailcli.errors import ExitStatus, MailcliError

    if not isinstance(exc, MailcliError):
        return _internal_error(app, exc)
    if exc.exit_status == ExitStatus.OK:  # StoppedEarly: done as asked, not a failure
        if not app.quiet:
            app.terminal.stderr.write(f"mailcli: {exc.message}\n")
        return int(ExitStatus.OK)
    if app.debug:
        _print_traceback()
    _stderr_renderer(app).error(exc.message, hint=exc.hint)
    return int(exc.exit_status)


def _exit_code(result: object) -> int:
    return int(result) if isinstance(result, int) else 0


def _stderr_renderer(app: AppContext) -> Renderer:
    """Diagnostics as every run writes them: not JSON, never silenced by -q."""
    return app.terminal.renderer(json_output=False, quiet=False)


def _usage_error(app: AppContext, exc: click.exceptions.ClickException) -> int:
    from mailcli.errors import ExitStatus

    ctx = getattr(exc, "ctx", None)  # usage errors know their command; others do not
    hint = f"see `{ctx.command_path if ctx else 'mailcli'} --help`"
    _stderr_renderer(app).error(exc.format_message(), hint=hint)
    return int(ExitStatus.USAGE)


def _interrupted() -> int:
    from mailcli.errors import ExitStatus

    sys.stderr.write("\n")
    return int(ExitStatus.INTERRUPTED)


def _internal_error(app: AppContext, exc: Exception) -> int:
    from mailcli.errors import ExitStatus

    if app.debug:
        _print_traceback()
    _stderr_renderer(app).error(
        f"internal error: {type(exc).__name__}: {exc}",
        hint=None if app.debug else "this is a bug in mailcli; rerun with --debug for a traceback",
    )
    return int(ExitStatus.SOFTWARE)


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()
