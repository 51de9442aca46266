"""Mail programs that hand their mail to a sendmail: mutt, neomutt, git send-email, s-nail.

Each runs as a user runs it without a terminal (mutt's batch mode, git send-email with
every answer on its command line, s-nail reading the body from stdin), reads no system
or personal configuration file, and is told nothing but where its sendmail is, called
with the arguments it passes by default. ``sendmail=None`` leaves the program's built-in
path, ``/usr/sbin/sendmail``: run it in a mount namespace with mailcli bound over that
path (``system_sendmail_wrapper``), never on the machine's real one.

``send(letter)`` composes one message to one recipient and returns the finished
process. ``complaint(done)`` is what the program told its user about that message:
None when it said "sent" (exit 0, its own success sign, nothing kept as undelivered),
else the sign that it did not. A program that says "not sent" for a message its
sendmail in fact queued makes its user send it again, and the queue delivers both.
"""

from __future__ import annotations

import os
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .procs import which

SYSTEM_SENDMAIL = Path("/usr/sbin/sendmail")


@dataclass(frozen=True)
class Letter:
    """What the user writes: one message from ``sender`` (a "Name <address>") to
    ``recipient``; ``body`` is whole lines."""

    sender: str
    recipient: str
    subject: str
    body: str


class Caller(ABC):
    """One mail program, working in ``root`` (created), sending through ``sendmail``."""

    name: ClassVar[str]
    # The Subject the program sends for a letter's subject.
    subject_prefix: ClassVar[str] = ""
    # Whether the program sends more after the letter's body (git: the patch).
    extends_body: ClassVar[bool] = False

    def __init__(self, root: Path, sendmail: Path | None) -> None:
        self.root = root
        self.sendmail = sendmail
        root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def missing(cls) -> str | None:
        """Why the program cannot run here, or None."""
        binary = cls.binary()
        return None if which(binary) else f"not installed: {binary}"

    @classmethod
    def binary(cls) -> str:
        return cls.name

    @abstractmethod
    def command(self, letter: Letter) -> tuple[list[str], str]:
        """The program's command line and its stdin for ``letter``."""

    @abstractmethod
    def complaint(self, done: subprocess.CompletedProcess[str]) -> str | None:
        """None if the program told its user the message was sent, else how it did not."""

    def environment(self, letter: Letter) -> dict[str, str]:
        """The program's environment (mailcli finds its config through it)."""
        return dict(os.environ)

    def send(
        self, letter: Letter, *, wrapper: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Run the program for ``letter`` (inside ``wrapper``'s command, if any)."""
        argv, stdin = self.command(letter)
        return subprocess.run(
            [*wrapper, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.root,
            env=self.environment(letter),
            timeout=60,
            check=False,
        )


def _nonzero_exit(done: subprocess.CompletedProcess[str]) -> str | None:
    return f"exit status {done.returncode}" if done.returncode != 0 else None


class Mutt(Caller):
    """mutt in batch mode: ``mutt -n -F MUTTRC -s SUBJECT -- RCPT < BODY``."""

    name = "mutt"

    def command(self, letter: Letter) -> tuple[list[str], str]:
        muttrc = self.root / "muttrc"
        lines = [
            f'set from="{letter.sender}"',
            "set use_from=yes",
            'set record=""',  # no copy to a local Sent folder
            "set copy=no",
            f'set tmpdir="{self.root}"',
            f'set postponed="{self.root / "postponed"}"',
        ]
        if self.sendmail is not None:
            lines.append(f'set sendmail="{self.sendmail} -oem -oi"')  # mutt's default arguments
        muttrc.write_text("\n".join(lines) + "\n")
        argv = [self.binary(), "-n", "-F", str(muttrc), "-s", letter.subject]
        return [*argv, "--", letter.recipient], letter.body

    def complaint(self, done: subprocess.CompletedProcess[str]) -> str | None:
        # "Could not send the message." goes to stdout, the sendmail's status to stderr.
        for sign in ("Could not send", "Error sending message"):
            if sign in done.stdout + done.stderr:
                return f"it says {sign!r}"
        return _nonzero_exit(done)


class NeoMutt(Mutt):
    """neomutt, configured and run exactly as mutt."""

    name = "neomutt"


class GitSendEmail(Caller):
    """git send-email of a one-commit patch whose message is the letter's subject and
    body: ``git send-email --sendmail-cmd=SENDMAIL --from --to --confirm=never PATCH``."""

    name = "git-send-email"
    subject_prefix = "[PATCH] "
    extends_body = True

    @classmethod
    def binary(cls) -> str:
        return "git"

    @classmethod
    def missing(cls) -> str | None:
        reason = super().missing()
        if reason is not None:
            return reason
        exec_path = subprocess.run(
            ["git", "--exec-path"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if not Path(exec_path, "git-send-email").exists():
            return "not installed: git send-email (Debian package git-email)"
        if subprocess.run(["perl", "-MMail::Address", "-e1"], capture_output=True).returncode:
            return "not installed: Perl's Mail::Address (Debian package libmailtools-perl)"
        return None

    def environment(self, letter: Letter) -> dict[str, str]:
        name, _, address = letter.sender.rstrip(">").partition(" <")
        return {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": address,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": address,
        }

    def command(self, letter: Letter) -> tuple[list[str], str]:
        patch = self._make_patch(letter)
        argv = ["git", "-C", str(self.root / "repo"), "send-email"]
        if self.sendmail is not None:
            argv.append(f"--sendmail-cmd={self.sendmail}")
        argv += [f"--from={letter.sender}", f"--to={letter.recipient}"]
        argv += ["--confirm=never", "--suppress-cc=all", str(patch)]
        return argv, ""

    def _make_patch(self, letter: Letter) -> Path:
        repo = self.root / "repo"
        message = self.root / "message"
        message.write_text(f"{letter.subject}\n\n{letter.body}")
        self._git(letter, "init", "-q", str(repo))
        (repo / "change.txt").write_text(f"{letter.subject}\n")
        self._git(letter, "-C", str(repo), "add", "change.txt")
        self._git(letter, "-C", str(repo), "commit", "-q", "-F", str(message))
        patches = str(self.root / "patches")
        return Path(self._git(letter, "-C", str(repo), "format-patch", "-1", "-o", patches).strip())

    def _git(self, letter: Letter, *args: str) -> str:
        done = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            env=self.environment(letter),
            timeout=60,
            check=True,
        )
        return done.stdout

    def complaint(self, done: subprocess.CompletedProcess[str]) -> str | None:
        if "Result: OK" not in done.stdout:
            return "no 'Result: OK' on stdout"
        return _nonzero_exit(done)


class SNail(Caller):
    """s-nail sending from stdin, no resource files (``-:/``), waiting for its MTA's exit
    status (``sendwait``, its default, set here all the same) and keeping what it could
    not send in ``DEAD``, a file of this caller's (as root s-nail ignores $HOME)."""

    name = "s-nail"

    @property
    def dead_letter(self) -> Path:
        return self.root / "dead.letter"

    def command(self, letter: Letter) -> tuple[list[str], str]:
        argv = ["s-nail", "-:/", "-Ssendwait", f"-SDEAD={self.dead_letter}"]
        if self.sendmail is not None:
            argv.append(f"-Smta={self.sendmail}")
        argv += [f"-Sfrom={letter.sender}", "-s", letter.subject, letter.recipient]
        return argv, letter.body

    def complaint(self, done: subprocess.CompletedProcess[str]) -> str | None:
        if self.dead_letter.exists():
            return f"wrote {self.dead_letter.name}"
        if "not sent" in done.stderr:
            return "stderr says 'not sent'"
        return _nonzero_exit(done)


CALLERS: dict[str, type[Caller]] = {
    caller.name: caller for caller in (Mutt, NeoMutt, GitSendEmail, SNail)
}


def system_sendmail_wrapper(mailcli: Path) -> list[str]:
    """A command prefix running its command in a private mount namespace where
    ``/usr/sbin/sendmail`` is ``mailcli`` (as after ``ln -sf mailcli /usr/sbin/sendmail``);
    the machine's own sendmail is untouched. Needs root and ``unshare``."""
    script = f'mount --bind "$0" {SYSTEM_SENDMAIL} && exec "$@"'
    private_namespace = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*private_namespace, "sh", "-c", script, str(mailcli)]
