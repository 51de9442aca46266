"""The POP3 one-shot commands: each is one session (connect, TLS, login, command, QUIT)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mailcli.cli.context import AppContext
from mailcli.cli.options import connection_options, quit_after_option
from mailcli.endpoint import ConnectionOptions
from mailcli.errors import UsageError
from mailcli.pop3.phases import PHASES, pop3_phase

if TYPE_CHECKING:
    from mailcli.pop3.session import Pop3Session


def pop3_command(function: Callable[..., Any]) -> click.Command:
    """A POP3 command (click names `list_command` "list"): connection and --quit-after
    options, the AppContext first (the group adds the global flags)."""
    with_options = quit_after_option(PHASES)(function)
    return click.command()(click.pass_obj(connection_options(with_options)))


Decorator = Callable[[Any], Any]


class DeferredCommand:
    """A POP3 command's function and its own arguments and options, built into a
    click.Command only when the group asks for it: a run builds the one command it
    runs, not all eight with their ~100 options (~3 ms of start-up)."""

    def __init__(self, function: Callable[..., Any], decorators: tuple[Decorator, ...]) -> None:
        self.function = function
        self.decorators = decorators
        self._command: click.Command | None = None

    def build(self) -> click.Command:
        if self._command is None:
            command: Any = pop3_command(self.function)
            for decorate in reversed(self.decorators):  # applied as stacked above it
                command = decorate(command)
            self._command = command
        return self._command


def deferred_pop3_command(
    *decorators: Decorator,
) -> Callable[[Callable[..., Any]], DeferredCommand]:
    """`@deferred_pop3_command(click.argument(...), click.option(...))`: the decorators
    as they would stand above `@pop3_command`, top first, applied on `build()`."""
    return lambda function: DeferredCommand(function, decorators)


def open_session(app: AppContext, connection: ConnectionOptions) -> Pop3Session:
    from mailcli.pop3.session import Pop3Session  # poplib and ssl: not for --help

    endpoint = app.endpoint("pop3", connection)
    return Pop3Session(
        endpoint,
        credential=app.credential(endpoint),
        transcript=app.transcript(),
        quit_after=pop3_phase(app.quit_after),
    )


@deferred_pop3_command()
def stat(app: AppContext, /, connection: ConnectionOptions) -> None:
    """Message count and total octets (STAT)."""
    from mailcli.pop3.commands import stat as pop3_stat

    with open_session(app, connection) as pop:
        count, octets = pop3_stat(pop, quit=True)
    app.out.table(
        ["messages", "octets"], [[count, octets]], document={"messages": count, "octets": octets}
    )


@deferred_pop3_command(
    click.argument("messages", nargs=-1, metavar="[MSG]..."),
    click.option("--headers", is_flag=True, help="Add From, Date and Subject (TOP n 0)."),
)
def list_command(
    app: AppContext, /, connection: ConnectionOptions, messages: tuple[str, ...], headers: bool
) -> None:
    """Messages with their sizes and UIDs (LIST and UIDL)."""
    from mailcli.pop3.commands import (
        display_uid,
        header_summaries,
        list_messages,
        parse_message_set,
    )

    numbers = parse_message_set(messages)
    with open_session(app, connection) as pop:
        infos = list_messages(pop, numbers, quit=not headers)
        numbered = [i.number for i in infos]
        summaries = dict(header_summaries(pop, numbered, quit=True)) if headers else {}
    columns = ["number", "size", "uid"] + (["from", "date", "subject"] if headers else [])
    rows, documents = [], []
    for info in infos:
        uid = display_uid(info.uid)  # any byte may be in a UID; shown as \xNN if not UTF-8
        document: dict[str, Any] = {"number": info.number, "size": info.size, "uid": uid}
        if headers:
            summary = summaries[info.number]
            document.update(
                {"from": summary.sender, "date": summary.date, "subject": summary.subject}
            )
        documents.append(document)
        rows.append([document[c] for c in columns])
    app.out.table(columns, rows, document={"messages": documents})


@deferred_pop3_command(click.argument("messages", nargs=-1, metavar="[MSG]..."))
def uidl(app: AppContext, /, connection: ConnectionOptions, messages: tuple[str, ...]) -> None:
    """Unique ids: stable across sessions, unlike message numbers."""
    from mailcli.pop3.commands import display_uid, list_uids, parse_message_set

    with open_session(app, connection) as pop:
        infos = list_uids(pop, parse_message_set(messages), quit=True)
    shown = [(i.number, display_uid(i.uid)) for i in infos]
    app.out.table(
        ["number", "uid"],
        [[number, uid] for number, uid in shown],
        document={"messages": [{"number": number, "uid": uid} for number, uid in shown]},
    )


@deferred_pop3_command(
    click.argument("lines", type=click.IntRange(min=0), default=0, required=False),
    click.argument("message", type=click.IntRange(min=1)),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),  # a str: pathlib is imported when a file is written
        help="Write to FILE (atomically) instead of stdout.",
    ),
)
def top(
    app: AppContext, /, connection: ConnectionOptions, message: int, lines: int, output: str | None
) -> None:
    """The headers of MESSAGE and its first LINES body lines (default 0)."""
    from mailcli.pop3.commands import retrieve

    with open_session(app, connection) as pop, _MessageOutput(app, output, lf=False) as write:
        retrieve(pop, message, write, top_lines=lines, quit=True)


@deferred_pop3_command(
    click.argument("message", type=click.IntRange(min=1), required=False),
    click.option("--uid", help="Address the message by its UID instead of its number."),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),  # a str: pathlib is imported when a file is written
        help="Write to FILE (atomically, mode 0600) instead of stdout.",
    ),
    click.option("--lf", is_flag=True, help="Convert CRLF line ends to LF."),
)
def retr(
    app: AppContext,
    /,
    connection: ConnectionOptions,
    message: int | None,
    uid: str | None,
    output: str | None,
    lf: bool,
) -> None:
    """The message's bytes as the server sends them (CRLF; the size LIST reports)."""
    from mailcli.pop3.commands import number_for_uid, retrieve

    if (message is None) == (uid is None):
        raise UsageError("give a message number or --uid UID (one of them)")
    with open_session(app, connection) as pop, _MessageOutput(app, output, lf=lf) as write:
        number = message if message is not None else number_for_uid(pop, str(uid))
        retrieve(pop, number, write, quit=True)


@deferred_pop3_command(
    click.argument("messages", nargs=-1, metavar="[MSG|RANGE]..."),
    click.option("--uid", "uids", multiple=True, metavar="UID", help="Delete by UID; repeatable."),
    click.option("--all", "everything", is_flag=True, help="Every message in the mailbox."),
    click.option("--dry-run", is_flag=True, help="Mark, then RSET and QUIT: delete nothing."),
)
def dele(
    app: AppContext,
    /,
    connection: ConnectionOptions,
    messages: tuple[str, ...],
    uids: tuple[str, ...],
    everything: bool,
    dry_run: bool,
) -> None:
    """Delete messages: marked with DELE, gone only when QUIT answers +OK."""
    from mailcli.pop3.commands import delete, display_uid, parse_message_set

    if sum(map(bool, (messages, uids, everything))) != 1:
        raise UsageError("name messages (numbers or ranges), or --uid UID..., or --all")
    numbers = parse_message_set(messages)
    with open_session(app, connection) as pop:
        done = delete(pop, numbers=numbers, uids=uids, everything=everything, dry_run=dry_run)
    status = "would delete" if dry_run else "deleted"
    marked = [{"number": m.number, "uid": display_uid(m.uid)} for m in done.marked]
    app.out.table(
        ["number", "uid", "status"],
        [[m.number, display_uid(m.uid), status] for m in done.marked],
        document={
            "dry_run": dry_run,
            "quit": done.quit_reply,
            "marked": marked,
            "deleted": [] if dry_run else marked,
        },
    )


@deferred_pop3_command()
def rset(app: AppContext, /, connection: ConnectionOptions) -> None:
    """One session: RSET, then QUIT; shows the server's answers."""
    with open_session(app, connection) as pop:
        rset_reply = pop.command("RSET", quit=True)
        quit_reply = pop.quit()
    app.out.table(
        ["command", "reply"],
        [["RSET", rset_reply], ["QUIT", quit_reply]],
        document={"rset": rset_reply, "quit": quit_reply},
    )


@deferred_pop3_command()
def capa(app: AppContext, /, connection: ConnectionOptions) -> None:
    """The server's capabilities (CAPA), after STLS when that is used."""
    with open_session(app, connection) as pop:
        capabilities = pop.capabilities
    app.out.table(
        ["capability", "arguments"],
        [[name, " ".join(args)] for name, args in capabilities.items()],
        document={"capabilities": capabilities},
    )


class _MessageOutput:
    """stdout (binary) or a file written atomically; optionally CRLF -> LF. The file's
    OSErrors become 73/74 here, before the POP3 session, which takes an OSError inside
    its exchange for a network failure, can see them: a full disk is not "cannot
    connect"."""

    def __init__(self, app: AppContext, output: str | None, *, lf: bool) -> None:
        self.app = app
        self.output = output
        self.lf = lf
        self._handle: Any = None
        self._lf: Any = None

    def __enter__(self) -> Callable[[bytes], None]:
        if self.output is None:
            self._handle = self.app.terminal.stdout_bytes
            return self._writer()
        from pathlib import Path

        from mailcli.cli.signals import held
        from mailcli.fsutil import PartialFile

        try:
            # Held: no signal lands between the file's creation and `self._handle`
            # knowing it; one that waited lands after, in here, and the file goes.
            with held(), self._file_errors():
                self._handle = PartialFile(Path(self.output))
            return self._writer()
        except BaseException:
            if self._handle is not None:
                self._handle.discard()
            raise

    def _file_errors(self) -> contextlib.AbstractContextManager[None]:
        from mailcli.fsutil import file_errors

        return file_errors(f"the output file {self.output}")

    def _writer(self) -> Callable[[bytes], None]:
        from mailcli.fsutil import write_error
        from mailcli.pop3.multiline import LfWriter

        write: Callable[[bytes], None] = self._handle.write
        if self.output is not None:
            inner = write

            def write(data: bytes) -> None:
                try:
                    inner(data)
                except OSError as exc:
                    raise write_error(exc, f"the output file {self.output}") from exc

        if not self.lf:
            return write
        self._lf = LfWriter(write)
        return self._lf.write  # type: ignore[no-any-return]

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self.output is None:
            if self._lf is not None:
                self._lf.flush()
            self._handle.flush()
            return
        if exc_type is not None:
            # The temporary goes all the same (discard's finally); the error in flight
            # says what went wrong, not a close that failed after it.
            with contextlib.suppress(OSError):
                self._handle.discard()
            return
        try:
            with self._file_errors():
                if self._lf is not None:
                    self._lf.flush()
                self._handle.commit()
        except BaseException:
            with contextlib.suppress(OSError):
                self._handle.discard()
            raise
