"""fetch's header filter (`--filter COMMAND`, key `filter`): a program that judges each
new message from its header before it is downloaded, with mpop's contract.

The contract:
- Per new message, `TOP n 0` fetches its header section, which goes to the command's
  stdin (CRLF as LF, as the message would be stored). The command runs through the
  shell, its stdout and stderr discarded from mailcli's data (stdout to /dev/null,
  stderr inherited), in mailcli's environment without its secrets
  (`auth.childenv`) plus `SENDER`.
- `%F` in the command becomes the message's envelope sender (`fetch.sender`: one inert
  shell word, MAILER-DAEMON when unknown), `%S` its size from LIST, in octets.
- Exit 0: deliver (downloaded as usual). 1: delete on the server without downloading
  (whatever --keep says; the DELE counts at QUIT, so a run stopped before it leaves the
  message to be judged again). 2: skip, left on the server and not downloaded now (the
  filter judges it again next run). 3 or more, death by a signal, or no answer within
  the timeout (`--timeout`, as for a server: the command and the processes it started
  are killed): the filter failed. That message stays on the server untouched, judging
  stops there (a broken filter would otherwise cost a timeout per message), messages
  judged before it are handled as judged, and the run ends with 75 naming it.
- A command whose program the shell cannot find is a config error (78) before the
  first connection: no message is touched.
- `--dry-run` runs no filter: its count is what would be judged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from mailcli.errors import ConfigError
from mailcli.fetch.sender import envelope_sender
from mailcli.pop3.commands import MessageInfo
from mailcli.pop3.session import Pop3Session

MAX_HEADER = 1024 * 1024  # a header section larger than this is a protocol error (76)


class Verdict(IntEnum):
    DELIVER = 0
    DELETE = 1
    SKIP = 2


@dataclass(frozen=True)
class HeaderFilter:
    """A checked filter command, with how long it may take per message."""

    command: str
    timeout: float

    @classmethod
    def checked(cls, command: str, *, timeout: float) -> HeaderFilter:
        """78 when the command is empty or the shell cannot find its program."""
        program = _program(command)
        if program is None or not _shell_finds(program):
            raise ConfigError(
                f"filter: command not found: {program or command!r}",
                hint="the filter is a shell command, e.g. --filter 'bogofilter -p -e'",
            )
        return cls(command, timeout)

    def judge(self, header: bytes, *, sender: str, size: int) -> Verdict | str:
        """The verdict on a message, or why the filter failed (a message for people)."""
        from mailcli.auth.childenv import child_environment

        command = self.command.replace("%F", sender).replace("%S", str(size))
        process = subprocess.Popen(
            command,
            shell=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={**child_environment(), "SENDER": sender},
            start_new_session=True,  # a timeout kills what the command started too
        )
        try:
            process.communicate(header, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            return f"did not answer within {self.timeout:g} s"
        except BaseException:  # a signal: the filter judged nothing, the message stays
            _kill(process)
            raise
        status = process.returncode
        if status < 0:
            return f"was killed by signal {-status}"
        if status > Verdict.SKIP:
            return f"exited with status {status}"
        return Verdict(status)


@dataclass
class Screening:
    """What the filter made of the new messages, in LIST order."""

    deliver: list[MessageInfo] = field(default_factory=list)
    delete: list[MessageInfo] = field(default_factory=list)
    skip: list[MessageInfo] = field(default_factory=list)
    failure: str | None = None  # why judging stopped; the rest stays on the server


def screen(
    pop: Pop3Session, messages: Sequence[MessageInfo], header_filter: HeaderFilter
) -> Screening:
    """Judge each message from its header (`TOP n 0`), in order, until one fails."""
    result = Screening()
    for position, info in enumerate(messages):
        pop.message_command("TOP", info.number, 0)
        buffer = bytearray()
        body = pop.read_body(buffer.extend, limit=MAX_HEADER)
        pop.transcript.data_summary("recv", body.lines, body.octets)
        header = bytes(buffer).replace(b"\r\n", b"\n")
        verdict = header_filter.judge(header, sender=envelope_sender(header), size=info.size or 0)
        if isinstance(verdict, str):
            result.failure = (
                f"the filter {verdict} on message {info.number}: left on the server, "
                f"with the {len(messages) - position - 1} not judged after it "
                f"(`{header_filter.command}`)"
            )
            return result
        {Verdict.DELIVER: result.deliver, Verdict.DELETE: result.delete}.get(
            verdict, result.skip
        ).append(info)
    return result


def _kill(process: subprocess.Popen[bytes]) -> None:
    """The command's whole session (a shell's children too), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _program(command: str) -> str | None:
    """The program a shell command line starts: its first word after any NAME=value."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return None
    words = [w for w in words if not _is_assignment(w)]
    return words[0] if words else None


def _is_assignment(word: str) -> bool:
    name, equals, _ = word.partition("=")
    return bool(equals) and name.isidentifier()


def _shell_finds(program: str) -> bool:
    """The shell's own answer (`command -v`): builtins and PATH programs; a path must
    be an executable file."""
    if "/" in program:
        return os.path.isfile(program) and os.access(program, os.X_OK)
    from mailcli.auth.childenv import child_environment

    found = subprocess.run(
        ["/bin/sh", "-c", 'command -v -- "$1" >/dev/null', "sh", program],
        env=child_environment(),  # a shell too: it gets no secret either
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return found.returncode == 0
