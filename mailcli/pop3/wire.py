"""POP3 on the wire: poplib with every line through the transcript, bounded status lines.

poplib speaks the protocol; its line I/O is replaced so that every line goes through the
transcript (masked) with bounded memory (a status line over 8 KiB is a protocol error,
76), and the reader uses large blocks so that RETR streams (`multiline`). `-ERR` replies
become errors with exit codes: RFC 2449/3206 response codes decide, `[AUTH]` 77,
`[IN-USE]` and `[SYS/TEMP]` 75, `[SYS/PERM]` 69, any other -ERR `NegativeReply`.

Every read goes through the connection's `network.Pace`: a status line must be complete
within the timeout, a multi-line body (which the session reads under `pace.bulk()`) must
keep its minimum rate; a dribbling server is 75, "server too slow".

Only `session` uses the wire, and only through its one guarded path: nothing here
translates stdlib exceptions (a reset connection raises ConnectionResetError here).
"""

from __future__ import annotations

import poplib
import re
import socket
from typing import TYPE_CHECKING, Any

from mailcli.endpoint import Endpoint
from mailcli.errors import (
    MailcliError,
    PermissionDeniedError,
    ProtocolError,
    TempFailError,
    UnavailableError,
)
from mailcli.network import Pace, paced_reader, reply_text
from mailcli.pop3.multiline import BLOCK_SIZE
from mailcli.transcript import Transcript
from mailcli.transport.connect import await_greeting, open_connection

if TYPE_CHECKING:
    import ssl

MAX_STATUS_LINE = 8192
_RESPONSE_CODE = rb"^-ERR \[([A-Za-z/-]+)\]"  # compiled on first use (re caches it)


class TracedPOP3(poplib.POP3):
    """poplib.POP3 whose lines pass through a Transcript, with bounded status lines."""

    def __init__(self, endpoint: Endpoint, *, transcript: Transcript, **kwargs: Any) -> None:
        self.transcript = transcript
        self.endpoint = endpoint
        self.pace = Pace(endpoint.timeout)
        # reads the greeting
        super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout, **kwargs)
        poplib_file, self.file = self.file, self.reader  # poplib's methods read self.file
        poplib_file.close()

    def use_new_reader(self) -> None:
        """A paced reader with large blocks, for streaming RETR: made on connecting and
        after STLS, when nothing else can be buffered."""
        self.reader = paced_reader(self.sock, self.pace, BLOCK_SIZE)
        self.file = self.reader

    def send_lines(self, *lines: str) -> None:
        """Commands in one write: pipelining (RFC 2449) when there are several, which
        the transcript marks as one group, as SMTP's are."""
        encoded = [line.encode(self.encoding) for line in lines]
        if len(encoded) > 1:
            self.transcript.info(f"pipelined: {len(encoded)} lines in one write")
        for line in encoded:
            self.transcript.sent(line)
        self.sock.sendall(b"".join(line + b"\r\n" for line in encoded))

    def read_line(self) -> bytes:
        """One status line as sent (line end removed), whatever it says."""
        return self._getline()[0]

    def read_ok(self) -> bytes:
        """One status line; -ERR raises poplib.error_proto, as poplib does."""
        reply = self.read_line()
        if not reply.startswith(b"+"):
            raise poplib.error_proto(reply)
        return reply

    def _create_socket(self, timeout: float) -> socket.socket:  # called by __init__
        # mailcli.connect, not poplib's create_connection: IPv6 literals, -4/-6, the
        # source address and the proxy are the same for every command there.
        sock = open_connection(self.endpoint, self.transcript, timeout)
        try:
            if isinstance(self, poplib.POP3_SSL):
                context: ssl.SSLContext = self.context  # type: ignore[attr-defined]
                sock = context.wrap_socket(sock, server_hostname=self.endpoint.host)
            else:  # a wrong TLS mode shows before +OK
                await_greeting(sock, self.endpoint, timeout, self.transcript)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.use_new_reader()  # poplib's __init__ reads the greeting next: through it
        return sock

    def _putline(self, line: bytes) -> None:  # what poplib's own commands call
        self.transcript.sent(line)
        self.sock.sendall(line + b"\r\n")

    def _getline(self) -> tuple[bytes, int]:
        self.pace.reply()
        line = self.reader.readline(MAX_STATUS_LINE + 1)
        if not line:
            raise TempFailError("the server closed the connection")
        if not line.endswith(b"\n"):
            if len(line) <= MAX_STATUS_LINE:  # cut short: the peer hung up mid-line
                raise TempFailError("the server closed the connection in the middle of a reply")
            raise ProtocolError(f"reply line longer than {MAX_STATUS_LINE} bytes")
        self.transcript.received(line)
        return line.rstrip(b"\r\n"), len(line)


class TracedPOP3SSL(TracedPOP3, poplib.POP3_SSL):
    """Implicit TLS (port 995) with the same tracing."""


def error_from_pop3_reply(
    exc: poplib.error_proto, default: MailcliError | None = None
) -> MailcliError:
    """-ERR (and poplib's own complaints) -> the error carrying the right exit status."""
    reply = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else str(exc).encode()
    text = reply_text(reply)
    code = re.match(_RESPONSE_CODE, reply)
    if code:
        name = code.group(1).decode().upper()
        if name == "AUTH":
            return PermissionDeniedError(f"authentication failed: {text}")
        if name in ("IN-USE", "SYS/TEMP", "LOGIN-DELAY"):
            return TempFailError(f"the server is busy: {text}")
        if name == "SYS/PERM":
            return UnavailableError(f"the server refuses: {text}")
    if default is not None:
        default.message = f"{default.message}: {text}"
        return default
    if not reply.startswith(b"-ERR"):
        return ProtocolError(f"unexpected reply: {text}")
    return NegativeReply(f"the server answered {text}", reply=text)


class NegativeReply(UnavailableError):
    """A plain -ERR: the server declined this command (what that means depends on it)."""

    def __init__(self, message: str, *, reply: str) -> None:
        super().__init__(message)
        self.reply = reply
