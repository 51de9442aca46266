"""The error hierarchy and the exit codes (sysexits.h, as sendmail and msmtp use).

A leaf module: it imports nothing from mailcli, so every other module can raise
these without import cycles. Each error class carries its exit status; the CLI
translates any `MailcliError` into one line on stderr and that status, in one place.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes. Values follow sysexits.h."""

    OK = 0
    USAGE = 64
    DATAERR = 65
    NOINPUT = 66
    NOUSER = 67
    NOHOST = 68
    UNAVAILABLE = 69
    SOFTWARE = 70
    CANTCREAT = 73
    IOERR = 74
    TEMPFAIL = 75
    PROTOCOL = 76
    NOPERM = 77
    CONFIG = 78
    # A run ended by a signal: 128 + the signal's number, as shells report it.
    HANGUP = 129  # SIGHUP
    INTERRUPTED = 130  # SIGINT: Ctrl-C
    BROKEN_PIPE = 141  # SIGPIPE: stdout's reader went away (`| head`)
    TERMINATED = 143  # SIGTERM


class MailcliError(Exception):
    """Base class: a message for people, an optional hint, and an exit status."""

    exit_status: ExitStatus = ExitStatus.SOFTWARE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class StoppedEarly(MailcliError):
    """Not a failure: the session ended cleanly (QUIT) at the phase `--quit-after` named."""

    exit_status = ExitStatus.OK

    def __init__(self, phase: str) -> None:
        super().__init__(f"stopped after {phase}, as --quit-after asked")
        self.phase = phase


class UsageError(MailcliError):
    """Bad options or arguments."""

    exit_status = ExitStatus.USAGE


class DataError(MailcliError):
    """Bad address, header injection, unparsable message."""

    exit_status = ExitStatus.DATAERR


class NoInputError(MailcliError):
    """A file to read is missing; no such POP3 message."""

    exit_status = ExitStatus.NOINPUT


class HostNotFoundError(MailcliError):
    """The host name does not resolve."""

    exit_status = ExitStatus.NOHOST


class UnavailableError(MailcliError):
    """Connection refused, or the server refuses service."""

    exit_status = ExitStatus.UNAVAILABLE


class RejectedError(UnavailableError):
    """The server permanently refused the message itself (5xx to MAIL FROM or DATA):
    sending it again unchanged cannot succeed, so the spool does not keep it.

    Carries the server's reply as data: `code` (550), `enhanced_status` (RFC 3463,
    "5.7.1" or None) and `text`; all None when mailcli refused before asking (a message
    over the SIZE the server announced)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: int | None = None,
        enhanced_status: str | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.enhanced_status = enhanced_status
        self.text = text


class CantCreateError(MailcliError):
    """The destination cannot be written."""

    exit_status = ExitStatus.CANTCREAT


class LocalIOError(MailcliError):
    """A local I/O error such as a full disk."""

    exit_status = ExitStatus.IOERR


class TempFailError(MailcliError):
    """4xx reply, timeout, dropped connection, lock held: try again later."""

    exit_status = ExitStatus.TEMPFAIL


class ProtocolError(MailcliError):
    """The server broke the protocol."""

    exit_status = ExitStatus.PROTOCOL


class PermissionDeniedError(MailcliError):
    """Authentication failed, or the server's TLS certificate is not trusted."""

    exit_status = ExitStatus.NOPERM


class ConfigError(MailcliError):
    """Bad or missing configuration."""

    exit_status = ExitStatus.CONFIG


class CredentialsError(ConfigError):
    """No password could be found through any source of the lookup chain."""


class Stopped(BaseException):
    """The run is ending on a signal: SIGTERM, SIGHUP, or SIGPIPE (standing for "the
    reader of stdout went away"). A BaseException, like Ctrl-C's KeyboardInterrupt: no
    error translation mistakes it for a failure (a session's OSError handler, an
    `except MailcliError`), while every `finally` and `except BaseException` cleanup
    runs (temporary files removed, completed fetch batches recorded). The CLI exits
    128 + the signal's number, quietly, as a shell reports a process the signal killed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus(128 + self.signum)
