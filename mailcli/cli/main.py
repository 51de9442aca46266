"""The `mailcli` group and the one place where errors become exit codes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from mailcli import __version__
from mailcli.cli.options import global_options
from mailcli.errors import ExitStatus, MailcliError
from mailcli.render import OutputMode, Renderer

# Commands live in their own modules, imported only when invoked; their one-line help
# is written here so that `mailcli --help` imports none of them.
_COMMANDS = {
    "account": ("mailcli.cli.account", "account", "Manage the accounts in the config file."),
    "password": ("mailcli.cli.password", "password", "Store, remove or locate a password."),
    "send": ("mailcli.cli.send", "send", "Compose and submit one message over SMTP."),
    "sendmail": ("mailcli.cli.sendmail", "sendmail", "sendmail-compatible front end (cron)."),
    "queue": ("mailcli.cli.sendmail", "queue", "List, retry or remove queued messages."),
    "stat": ("mailcli.cli.pop3", "stat", "POP3: message count and total octets."),
    "list": ("mailcli.cli.pop3", "list_command", "POP3: messages with sizes and UIDs."),
    "uidl": ("mailcli.cli.pop3", "uidl", "POP3: unique ids of the messages."),
    "top": ("mailcli.cli.pop3", "top", "POP3: headers and the first lines of a message."),
    "retr": ("mailcli.cli.pop3", "retr", "POP3: a message's bytes, streamed."),
    "dele": ("mailcli.cli.pop3", "dele", "POP3: delete messages (on QUIT)."),
    "rset": ("mailcli.cli.pop3", "rset", "POP3: RSET and QUIT, with the answers."),
    "capa": ("mailcli.cli.pop3", "capa", "POP3: the server's capabilities."),
    "shell": ("mailcli.cli.shell", "shell", "POP3: an interactive session."),
    "fetch": ("mailcli.cli.fetch", "fetch", "POP3: download new mail into Maildir/mbox/MDA."),
    "check": ("mailcli.cli.check", "check", "Report what an SMTP or POP3 server offers."),
    "completion": (
        "mailcli.cli.completion",
        "completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module_name, attribute, _ = _COMMANDS[cmd_name]
        module = __import__(module_name, fromlist=[attribute])
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry[2]) for name, entry in sorted(_COMMANDS.items())])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mailcli", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MAILCLI_CONFIG",
    help="Config file (default ~/.config/mailcli/config.toml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@global_options(for_group=True)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """Send mail over SMTP and work POP3 mailboxes: a scriptable telnet for mail."""
    from mailcli.cli.context import AppContext  # not at import time: --help stays fast

    app = ctx.ensure_object(AppContext)
    app.config_path = config_path
    app.debug = debug


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and translate every outcome into an exit status. Invoked through a
    link named `sendmail`, every argument belongs to the sendmail command."""
    args = sys.argv[1:] if argv is None else argv
    if argv is None and Path(sys.argv[0]).name == "sendmail":
        args = ["sendmail", *args]
    sys.exit(_run(args))


def _run(args: list[str]) -> int:
    try:
        result = cli.main(args=args, prog_name="mailcli", standalone_mode=False)
    except click.exceptions.Abort:
        return _interrupted()
    except KeyboardInterrupt:
        return _interrupted()
    except click.exceptions.ClickException as exc:
        ctx = getattr(exc, "ctx", None)  # usage errors know their command; others do not
        hint = f"see `{ctx.command_path if ctx else 'mailcli'} --help`"
        _stderr_renderer().error(exc.format_message(), hint=hint)
        return int(ExitStatus.USAGE)
    except MailcliError as exc:
        if exc.exit_status == ExitStatus.OK:  # StoppedEarly: done as asked, not a failure
            if "-q" not in args and "--quiet" not in args:
                sys.stderr.write(f"mailcli: {exc.message}\n")
            return 0
        if "--debug" in args:
            _print_traceback()
        _stderr_renderer().error(exc.message, hint=exc.hint)
        return int(exc.exit_status)
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:
        return _internal_error(exc, debug="--debug" in args)
    return _exit_code(result)


def _exit_code(result: Any) -> int:
    return int(result) if isinstance(result, int) else 0


def _stderr_renderer() -> Renderer:
    return Renderer(OutputMode.detect(json_output=False, quiet=False))


def _interrupted() -> int:
    sys.stderr.write("\n")
    return int(ExitStatus.INTERRUPTED)


def _broken_pipe() -> int:
    # The reader went away (`mailcli retr 1 | head`): stop quietly, as `cat` would.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


def _internal_error(exc: Exception, *, debug: bool) -> int:
    if debug:
        _print_traceback()
    _stderr_renderer().error(
        f"internal error: {type(exc).__name__}: {exc}",
        hint=None if debug else "this is a bug in mailcli; rerun with --debug for a traceback",
    )
    return int(ExitStatus.SOFTWARE)


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()
