"""The MDA destination of `fetch` (`--to mda:COMMAND`): each message is first received
into an unnamed private file (O_TMPFILE, mode 0600, in the fetch state folder); only when
it is complete does the command start, through the shell, with that file as its stdin
and without mailcli's secrets in its environment; exit 0 means delivered. A kill before
that hands the MDA nothing; a kill while it runs lets it read the whole message. Its
batch is one message: the MDA's own delivery is the commit.

The command learns the message's envelope sender (`fetch.sender`: its Return-Path, else
MAILER-DAEMON) as mpop's and fetchmail's MDAs do: every `%F` in it is replaced by the
sender, and `SENDER` in its environment holds it. The sender is one shell word of
letters, digits and `.@_-+/` never starting with `-` (`sender` makes it so), so `%F`,
'%F' and "%F" all pass it as one argument that no shell expands and no program takes
for an option; that is why it is not quoted here.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from mailcli.errors import CantCreateError, ConfigError
from mailcli.fetch.destination import MessageWriter, RecoveryHooks
from mailcli.fetch.sender import HeaderCapture, envelope_sender
from mailcli.pop3.multiline import LfWriter


class Mda(RecoveryHooks):
    """Runs COMMAND per message (through the shell), the whole message on its stdin,
    `%F` replaced by its sender, which `SENDER` in its environment holds too."""

    batch_size = 1

    def __init__(self, command: str, *, spool: Path) -> None:
        if not command.strip():
            raise ConfigError("mda: needs a command, e.g. mda:'procmail -d alice'")
        self.command = command
        self.spool = spool
        self.description = f"mda:{command}"

    def open_message(self, key: str) -> MessageWriter:
        return _MdaWriter(self.command, self.spool)

    def commit(self) -> None:
        """The MDA delivered (exit 0) before `finish` returned: nothing left to do."""

    def close(self) -> None:
        pass


class _MdaWriter:
    """Spools the message into an unnamed private file and starts the MDA on it only
    once the message is complete, so a mailcli killed mid-message hands the MDA nothing
    (a pipe would have shown it a normal end of input, and it would have delivered the
    part). The file is O_TMPFILE in the fetch state folder: on disk under HOME rather
    than in memory (a 100 MiB message) or a RAM-backed /tmp, and without a name there
    is nothing to clean up after a crash."""

    BUFFER = 256 * 1024  # a message under 256 KiB costs one write(2)

    def __init__(self, command: str, spool: Path) -> None:
        self.command = command
        # Mode 0600, not inheritable; closed by finish() or abandon(), not a with block.
        self.file = tempfile.TemporaryFile(dir=spool, buffering=self.BUFFER)  # noqa: SIM115
        self.header = HeaderCapture()  # the sender's Return-Path, seen as it streams by
        self.lf = LfWriter(self._spooled)
        self.write = self.lf.write

    def _spooled(self, data: bytes) -> None:
        self.header.feed(data)
        self.file.write(data)

    def finish(self) -> None:
        try:
            self.lf.flush()
            self.file.flush()
            self.file.seek(0)
            status = self._deliver()
        finally:
            self.file.close()
        if status != 0:
            raise CantCreateError(
                f"the MDA exited with status {status}: message not delivered, kept on "
                f"the server (`{self.command}`)"
            )

    def _deliver(self) -> int:
        from mailcli.auth.childenv import child_environment

        sender = envelope_sender(self.header.header)
        process = subprocess.Popen(
            self.command.replace("%F", sender),
            shell=True,
            stdin=self.file,
            env={**child_environment(), "SENDER": sender},
        )
        try:
            return process.wait()
        except BaseException:
            # Interrupted (SIGINT/SIGTERM): the MDA holds the whole message; cutting it
            # short could leave part of it in a mailbox. It finishes; the message stays
            # unrecorded, so the next run may deliver it again (the documented window).
            process.wait()
            raise

    def abandon(self) -> None:
        self.file.close()  # the MDA never started: nothing was delivered
