"""What SMTP and POP3 share below the protocol: TLS contexts and network-error mapping.

stdlib exceptions are translated here, where the protocol code calls the stdlib, into
the MailcliError that carries the right exit status:

| cause                                   | exit |
|-----------------------------------------|------|
| host name does not resolve              | 68   |
| connection refused / network unreachable| 69   |
| certificate not trusted, wrong host name| 77   |
| TLS handshake failed otherwise          | 69   |
| timeout, connection reset or dropped    | 75   |
| server too slow (see Pace below)        | 75   |
| wrong TLS mode for the port (see below) | 69   |

A wrong TLS mode never fixes itself on a retry, so it is 69 with a hint naming the
`--security` that fits, in both directions. Cleartext to an implicit-TLS port:
`transport.connect.await_greeting` tells. Implicit TLS to a port that greets in clear:
OpenSSL reads the greeting as a broken record (WRONG_VERSION_NUMBER and kin).

`--timeout` bounds time, not only each read (`Pace`, which both wires consult on every
read): a server that sends one byte a second never lets a single read time out. So
- every read waits at most the timeout, as before;
- every reply (a greeting, a status line, a whole multi-line SMTP reply) must be
  complete within the timeout of mailcli starting to read it: the conversation outside
  message bodies therefore ends within (its exchanges) x the timeout, and a dribbling
  reply fails with 75, "server too slow";
- a bulk transfer (a RETR or TOP body, a listing, the DATA upload) may take as long as
  it needs while it moves: at least MIN_RATE octets a second, averaged over every
  timeout's worth of waiting for the server (time mailcli spends writing to its own
  destination is not counted against the server); slower is 75, "server too slow".
A session made inside `session_timeout` (both sessions are) also bounds what it waits
for besides the server: the OAuth2 token request of its login takes the session's
timeout if that is shorter than its own.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from mailcli.errors import (
    HostNotFoundError,
    MailcliError,
    NoInputError,
    PermissionDeniedError,
    ProtocolError,
    TempFailError,
    UnavailableError,
)

MAX_REPLY_LINE = 8192  # an SMTP or LMTP reply line: what smtplib allows; RFC 5321 says 512
MAX_REPLY_LINES = 1000  # lines of one multi-line reply

_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "WRONG_SSL_VERSION",
    }
)

MIN_RATE = 1024  # octets a second a bulk transfer must average (Pace)
UPLOAD_FLOOR = 4096  # the smallest piece of an upload written at once (upload_piece)
# The timeout of the session being opened or used in this thread: a token request made
# for its login is bounded by it too (`session_timeout`).
_SESSION_TIMEOUT: ContextVar[float | None] = ContextVar("session_timeout", default=None)

if TYPE_CHECKING:
    import ssl

    from mailcli.endpoint import Endpoint
    from mailcli.transcript import Transcript


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Verify certificate and host name unless --insecure; TLS 1.2 at least.

    `--cafile` replaces the system's CA store, as curl's --cacert and msmtp's
    tls_trust_file do (and saves loading the whole store, ~20 ms, per connection).
    `--tls-fingerprint` trusts the leaf by its digest instead of any CA, and
    `--client-cert`/`--client-key` present a certificate (both: `tlsinfo`).
    """
    import ssl

    if endpoint.tls_fingerprint:
        from mailcli.tlsinfo import pinned_context

        pins = endpoint.tls_fingerprint
        context: ssl.SSLContext = pinned_context(pins, check_name=not endpoint.insecure)
    else:
        try:
            context = ssl.create_default_context(cafile=endpoint.cafile)
        except FileNotFoundError:
            raise NoInputError(f"--cafile {endpoint.cafile}: no such file") from None
        except ssl.SSLError as exc:
            raise NoInputError(f"--cafile {endpoint.cafile}: not a PEM CA bundle") from exc
        if endpoint.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if endpoint.client_cert or endpoint.client_key:
        from mailcli.tlsinfo import load_client_certificate

        load_client_certificate(
            context, endpoint.client_cert, endpoint.client_key, endpoint.client_key_passphrase
        )
    return context


def error_from_network(exc: BaseException, endpoint: Endpoint) -> MailcliError:
    """Map a stdlib network or TLS exception to the error with the documented status."""
    import ssl

    where = endpoint.where
    if isinstance(exc, MailcliError):
        return exc
    if isinstance(exc, socket.gaierror):
        return HostNotFoundError(f"cannot resolve host {endpoint.host!r}: {exc.strerror}")
    if isinstance(exc, ssl.SSLError):
        from mailcli.tlsinfo import tls_refusal  # a pin, or a client certificate wanted

        if refusal := tls_refusal(exc, where):
            return refusal
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermissionDeniedError(
            f"TLS certificate of {where} not trusted: {exc.verify_message}",
            hint="pass the CA with --cafile, or --insecure to skip verification (unsafe)",
        )
    if isinstance(exc, ssl.SSLError):
        failed = f"TLS handshake with {where} failed: {exc.reason or exc}"
        if endpoint.security == "tls" and exc.reason in _NOT_TLS_REASONS:
            return UnavailableError(
                f"{failed}: the server greets in clear and does not speak TLS from the start",
                hint="use --security starttls (TLS after the greeting), or --security none",
            )
        return UnavailableError(failed)
    if isinstance(exc, ServerTooSlow):
        return TempFailError(
            f"server too slow: {where} {exc.args[0]}",
            hint="a slow link? raise --timeout (it bounds each reply and the pace of a transfer)",
        )
    if isinstance(exc, TimeoutError):
        return TempFailError(
            f"timed out talking to {where} after {endpoint.timeout:g} s",
            hint="a slow server? raise --timeout",
        )
    if isinstance(exc, ConnectionRefusedError):
        return UnavailableError(f"connection to {where} refused")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError)):
        return TempFailError(f"{where} closed the connection unexpectedly")
    if isinstance(exc, OSError) and exc.errno is not None:
        return UnavailableError(f"cannot connect to {where}: {exc.strerror}")
    return TempFailError(f"connection to {where} failed: {exc}")


def reply_text(reply: bytes | str) -> str:
    """A server's reply as text (smtplib hands over bytes or str), bad UTF-8 replaced."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def dot_stuff(data: bytes, *, at_line_start: bool = True) -> bytes:
    """DATA's transparency (RFC 5321 4.5.2), which a POP3 server's multi-line replies
    share: a "." that begins a CRLF-delimited line gets another in front of it.
    `at_line_start` says whether `data`'s first byte begins a line."""
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if at_line_start and data.startswith(b".") else data


def read_reply(
    read_line: Callable[[], tuple[int, bool, bytes]], name: str = ""
) -> tuple[int, bytes]:
    """A whole SMTP or LMTP reply from `read_line` (each call one `reply_line`): the code
    and the lines' texts joined by LF. ProtocolError (76) past MAX_REPLY_LINES lines."""
    lines: list[bytes] = []
    while True:
        code, more, text = read_line()
        lines.append(text)
        if not more:
            return code, b"\n".join(lines)
        if len(lines) >= MAX_REPLY_LINES:
            raise ProtocolError(f"multi-line {name}reply longer than {MAX_REPLY_LINES} lines")


def reply_line(line: bytes, transcript: Transcript, name: str = "") -> tuple[int, bool, bytes]:
    """One line of an SMTP or LMTP reply (RFC 5321 4.2), as read with a limit of
    MAX_REPLY_LINE + 1: (code, more lines follow, text). Traced before its form is
    judged, so a malformed line shows in the transcript. ProtocolError (76) for a line
    over the limit, without its end, or not `DDD`, `DDD text` or `DDD-text`; `name`
    ("LMTP ") names the protocol in those errors."""
    if len(line) > MAX_REPLY_LINE or not line.endswith(b"\n"):
        raise ProtocolError(f"{name}reply line longer than {MAX_REPLY_LINE} bytes")
    text = line.rstrip(b"\r\n")
    transcript.received(text)
    if not (text[:3].isdigit() and text[3:4] in (b"", b" ", b"-")):
        raise ProtocolError(f"malformed {name}reply line: {text[:80]!r}")
    return int(text[:3]), text[3:4] == b"-", text[4:]


def trace_tls(sock: object, transcript: Transcript) -> None:
    """`==` lines for the transcript: protocol, cipher, and the certificate in brief."""
    import ssl

    if not transcript.enabled or not isinstance(sock, ssl.SSLSocket):
        return
    from mailcli.tlsinfo import describe

    verified = sock.context.verify_mode != ssl.CERT_NONE
    info = describe(sock, verified=verified, verify_error=None if verified else "--insecure")
    for line in info.trace_lines():
        transcript.info(line)


class ServerTooSlow(TimeoutError):
    """The server is sending, but too slowly for `Pace` (a TimeoutError: every path that
    handles a timed-out read handles this the same way, and `error_from_network` names it)."""


class Pace:
    """The time rules of one connection (the module docstring): a deadline for the reply
    being read, or in a bulk transfer the rate it must keep. The wires call `reply()`
    when they start reading a reply, `bulk()` around a body, and read through
    `PacedReader`, which asks `read_timeout()` before and reports `received()` after
    every read."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._reply_octets = 0
        self._in_bulk = False
        self._waited = 0.0  # bulk: seconds spent waiting for the server in this window
        self._window_octets = 0

    def reply(self) -> None:
        """A reply is awaited from now on: it must be complete within the timeout."""
        self._deadline = time.monotonic() + self.timeout
        self._reply_octets = 0

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """A transfer that may take long while it keeps MIN_RATE."""
        self._in_bulk, self._waited, self._window_octets = True, 0.0, 0
        try:
            yield
        finally:
            self._in_bulk = False

    def read_timeout(self) -> float:
        """How long the next read may wait; ServerTooSlow when the reply's time is up."""
        if self._in_bulk:
            return self.timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self.too_slow()
        return min(left, self.timeout)

    def too_slow(self) -> TimeoutError:
        """The error for a reply not complete within the timeout: a plain timeout when
        none of it came, else ServerTooSlow."""
        if not self._reply_octets:
            return TimeoutError("no reply")
        return ServerTooSlow(
            f"sent {self._reply_octets} octets of a reply without completing it in "
            f"{self.timeout:g} s"
        )

    def received(self, octets: int, waited: float) -> None:
        """`octets` arrived after `waited` seconds of waiting for them."""
        if not self._in_bulk:
            self._reply_octets += octets
            return
        self._waited += waited
        self._window_octets += octets
        if self._waited < self.timeout:
            return
        if self._window_octets < MIN_RATE * self._waited:
            raise ServerTooSlow(
                f"sent {self._window_octets} octets in {self._waited:.1f} s of a transfer "
                f"(at least {MIN_RATE} a second are needed)"
            )
        self._waited, self._window_octets = 0.0, 0


class PacedReader(io.RawIOBase):
    """A socket's receiving side for io.BufferedReader, every read under `pace`."""

    def __init__(self, sock: socket.socket, pace: Pace) -> None:
        super().__init__()
        self._sock = sock
        self._pace = pace

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        limit = self._pace.read_timeout()
        shortened = limit < self._pace.timeout
        if shortened:  # only then: settimeout() is an ioctl each time
            self._sock.settimeout(limit)
        started = time.monotonic()
        try:
            octets = self._sock.recv_into(buffer)
        except TimeoutError:
            if shortened:  # the reply's time ran out, not one read's
                raise self._pace.too_slow() from None
            raise
        finally:
            if shortened:
                self._sock.settimeout(self._pace.timeout)
        self._pace.received(octets, time.monotonic() - started)
        return octets


def paced_reader(
    sock: socket.socket, pace: Pace, size: int = io.DEFAULT_BUFFER_SIZE
) -> io.BufferedReader:
    """A buffered reader of `sock` whose every read follows `pace`."""
    return io.BufferedReader(PacedReader(sock, pace), size)


def upload_piece(timeout: float) -> int:
    """How much of an upload to write at once. Each write (sendall) must finish within the
    timeout, so a piece of MIN_RATE x timeout makes an upload that keeps MIN_RATE go
    through however long it takes, and one slower fail (75)."""
    return max(UPLOAD_FLOOR, int(MIN_RATE * timeout))


@contextlib.contextmanager
def session_timeout(timeout: float) -> Iterator[None]:
    """While a session is opened or used: what `current_session_timeout` answers."""
    token = _SESSION_TIMEOUT.set(timeout)
    try:
        yield
    finally:
        _SESSION_TIMEOUT.reset(token)


def current_session_timeout() -> float | None:
    """The timeout of the session this thread is in, if any (an OAuth2 token request
    made for its login waits no longer than the session would)."""
    return _SESSION_TIMEOUT.get()
