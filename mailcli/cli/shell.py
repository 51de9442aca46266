"""`mailcli shell`: an interactive POP3 session, the telnet session done properly.

Already authenticated (TLS, AUTH as for every command). Lines are POP3 commands; the
replies are shown as the server sends them (`+OK 3 2086`), multi-line ones still
dot-stuffed and through their closing `.` (see `mailcli.pop3.multiline`). DELE marks and
RSET unmarks, exactly as on the wire: deletions happen only at `quit`. End of input
or Ctrl-C without `quit` closes the connection without QUIT, so nothing is deleted
(with a warning when something was marked).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, BinaryIO

import click

from mailcli.cli.context import AppContext
from mailcli.cli.pop3 import open_session, pop3_command
from mailcli.endpoint import ConnectionOptions

if TYPE_CHECKING:
    from mailcli.pop3.session import Pop3Session

HELP = """\
commands (as in a telnet session; case does not matter):
  stat              message count and total octets
  list [n]          sizes               uidl [n]      unique ids
  top n [lines]     headers + lines     retr n        the whole message
  dele n            mark for deletion   rset          unmark everything
  noop              keep alive          capa          capabilities
  quit              commit deletions and leave (end of input: leave, delete nothing)
any other line is sent to the server as it is."""

COMMANDS = ("stat", "list", "uidl", "top", "retr", "dele", "rset", "noop", "capa", "help", "quit")
_MULTILINE_ALWAYS = {"CAPA", "TOP", "RETR"}
_MULTILINE_WITHOUT_ARGUMENT = {"LIST", "UIDL"}
_REFUSED = {"USER", "PASS", "APOP", "AUTH", "STLS"}  # the session is already logged in


@pop3_command
def shell(app: AppContext, /, connection: ConnectionOptions) -> None:
    """An interactive POP3 session (prompt, history, help); deletions only at `quit`."""
    interactive = app.terminal.stdin_tty
    if interactive:
        _enable_line_editing()
    with open_session(app, connection) as pop:
        app.out.info(
            f"logged in to {pop.endpoint.host} as {pop.endpoint.user}; `help` lists the commands"
        )
        marked: set[str] = set()
        if not _loop(app, pop, marked, interactive):
            pop.close()  # end of input without `quit`: no QUIT, nothing deleted
            if marked:
                app.out.warning(
                    f"{len(marked)} message(s) marked for deletion were NOT "
                    "deleted: the session ended without `quit`"
                )


def _loop(app: AppContext, pop: Pop3Session, marked: set[str], interactive: bool) -> bool:
    """Run commands until `quit` (returns True) or end of input (returns False)."""
    while True:
        try:
            line = input("pop3> " if interactive else "").strip()
        except (EOFError, KeyboardInterrupt):
            if interactive:
                click.echo(err=True)
            return False
        if not line:
            continue
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "HELP":
            click.echo(HELP)
        elif verb in _REFUSED:
            click.echo(f"-ERR (mailcli) {verb} is not available: the session is logged in")
        elif verb in ("QUIT", "EXIT"):
            click.echo(pop.quit())
            if marked:
                app.out.info(f"deleted {len(marked)} message(s)")
            return True
        else:
            _send(pop, verb, argument.strip(), marked, app.terminal.stdout_bytes)


def _send(pop: Pop3Session, verb: str, argument: str, marked: set[str], out: BinaryIO) -> None:
    """One command; the reply on stdout as the server sent it (a multi-line body still
    dot-stuffed, through its "." line), every line ending in LF."""
    multiline = verb in _MULTILINE_ALWAYS or (verb in _MULTILINE_WITHOUT_ARGUMENT and not argument)
    reply = pop.exchange(f"{verb} {argument}".strip(), out.write, multiline=multiline)
    out.flush()
    if reply.startswith("+OK"):
        if verb == "DELE":
            marked.add(argument)
        elif verb == "RSET":
            marked.clear()


def _enable_line_editing() -> None:
    """readline: editing, history in the state folder, Tab completes command names."""
    try:
        import readline
    except ImportError:  # not every Python has it; the shell works without
        return
    from mailcli.config import state_home

    history = state_home() / "shell_history"

    def complete(text: str, state_index: int) -> str | None:
        matches = [c for c in COMMANDS if c.startswith(text.lower())]
        return matches[state_index] if state_index < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    with contextlib.suppress(OSError):  # no history yet
        readline.read_history_file(history)
    import atexit

    def save() -> None:
        history.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        readline.write_history_file(history)

    atexit.register(save)
