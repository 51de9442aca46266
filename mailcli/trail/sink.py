"""Where trail lines go: a file, or syslog. Writing the log never changes a run's outcome.

A target is `syslog` or a file path (`~` expanded; a file literally named syslog is
`./syslog`). A file is opened for each line with O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW
(created 0600; an existing file keeps its mode) and the line goes in one `write`: the
kernel appends each write whole at the end, so concurrent cron jobs never interleave
their lines. A path whose last component is a symbolic link is refused, as for every
file mailcli creates; its folder must exist. Non-blocking, so a FIFO without a reader
is an error, not a hang.

syslog: facility mail, one datagram per line to /dev/log (`<22>` mail.info for a
success, `<19>` mail.err otherwise), in the format the C library's syslog() sends
(`<PRI>Mmm dd hh:mm:ss mailcli[PID]: LINE`). `MAILCLI_SYSLOG_SOCKET` names another
socket instead of /dev/log; it exists for the tests.

A line that cannot be written is dropped: `Trail.write` returns why, once per target
(the caller warns on stderr), never raises. A short write (a disk that fills mid-line)
is reported the same way; what it wrote stays, and the next line appended to a file
that ends mid-line starts with a newline, so it is never glued to the cut one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SYSLOG = "syslog"
_MAIL_INFO = 2 * 8 + 6  # facility mail (2), severity info (6)
_MAIL_ERR = 2 * 8 + 3  # severity err (3)
_FILE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS |= os.O_NONBLOCK


class Trail:
    """Appends trail lines to their targets, remembering which targets failed."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.syslog_socket = environ.get("MAILCLI_SYSLOG_SOCKET") or "/dev/log"
        self.failed: set[str] = set()

    def write(self, target: str, line: str, *, success: bool = True) -> str | None:
        """Append `line` (one record, no newline) to `target`: None when written, else
        why not, the first time this target fails (later failures: None)."""
        try:
            if target == SYSLOG:
                self._send_syslog(line, _MAIL_INFO if success else _MAIL_ERR)
            else:
                _append(os.path.expanduser(target), (line + "\n").encode("utf-8"))
        except OSError as exc:
            if target in self.failed:
                return None
            self.failed.add(target)
            return _problem(target, self.syslog_socket, exc)
        return None

    def _send_syslog(self, line: str, priority: int) -> None:
        import socket
        import time

        stamp = time.strftime("%b %d %H:%M:%S")
        if stamp[4] == "0":  # syslog pads the day with a space, not a zero
            stamp = stamp[:4] + " " + stamp[5:]
        datagram = f"<{priority}>{stamp} mailcli[{os.getpid()}]: {line}".encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(datagram, self.syslog_socket)


def _append(path: str, data: bytes) -> None:
    descriptor = os.open(path, _FILE_FLAGS, 0o600)
    try:
        if _ends_mid_line(path, descriptor):
            data = b"\n" + data
        written = os.write(descriptor, data)
    finally:
        os.close(descriptor)
    if written != len(data):  # the rest, written later, could land amid another's line
        raise OSError(0, f"short write ({written} of {len(data)} bytes)")


def _ends_mid_line(path: str, descriptor: int) -> bool:
    """Whether the file's last octet is no newline: an earlier line cut short by a full
    disk. The new line then starts on a line of its own rather than completing that one.
    A file that cannot be read back (a FIFO, no read permission) is taken as whole."""
    import stat

    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
        return False
    try:
        reader = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return os.pread(reader, 1, status.st_size - 1) not in (b"\n", b"")
        finally:
            os.close(reader)
    except OSError:
        return False


def _problem(target: str, socket_path: str, exc: OSError) -> str:
    import errno

    reason = exc.strerror or str(exc)
    if target == SYSLOG:
        return f"cannot log to syslog through {socket_path}: {reason}"
    if exc.errno == errno.ELOOP:
        reason = "it is a symbolic link, which mailcli does not follow"
    return f"cannot write the log {target}: {reason}"
