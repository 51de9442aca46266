"""A raw, bounded, recorded line conversation for the audit's probes.

The probes must send what no well-behaved client sends (bare LFs inside DATA, a
command pipelined after STARTTLS, TLS 1.0), so they talk over a plain socket, not through
the protocol sessions. Every line sent and received goes into `evidence` (AUTH and PASS
arguments masked) so each finding can show exactly what proved it. Every read is bounded
by the timeout; a silent server is an answer (`None`), not a hang.

A server that dribbles (a byte at a time, never a line end) keeps one read after
another busy: the audit's deadline ends that. Every connection is registered while it is
open so that `shut_down_all()` can end, at the deadline, the reads of probes that
overran; a blocked recv() wakes only on shutdown(), not on close().

`RawConnection.open` is the only way the audit connects: it holds a slot of the
target's `ConnectionLimiter` from before the connect until close, and it waits for the
server's greeting (SMTP's final greeting line, POP3's first line; for implicit TLS
after the handshake) without consuming it. A refused or reset connection, a close
before the greeting, a greeting that does not come within the probe timeout, an SMTP
4xx greeting (Exim's 421 "too many connections") or a POP3 -ERR greeting is a server
at a limit: the slot is given back and the connection tried again after a back-off
(RETRY_DELAYS). When every attempt failed, `ServerUnavailable` carries the reason and
what each attempt saw; the audit reports the probe as one that could not run.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING

from mailcli.check.findings import AuditTarget
from mailcli.check.limiter import ConnectionLimiter
from mailcli.transcript import SecretMasker
from mailcli.transport.connect import open_connection

if TYPE_CHECKING:
    import ssl

    from mailcli.endpoint import MailProtocol

MAX_LINE = 8192
MAX_EVIDENCE = 60  # lines kept per conversation: enough to prove, not to flood
_open: set[RawConnection] = set()  # every connection not yet closed (shut_down_all)
_open_lock = threading.Lock()
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)  # seconds before each new attempt: ~4 s in all
# The connect failures of a server at its connection limit (or restarting): worth a retry.
_RETRYABLE = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, TimeoutError)


class ServerUnavailable(Exception):
    """No greeted connection after every attempt: `message` says why, `evidence` what
    each attempt saw."""

    def __init__(self, message: str, evidence: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = tuple(evidence)


class RawConnection:
    """`with RawConnection.open(target) as conn:` a connected socket (TLS from the start
    when the endpoint's security is `tls`, unless `plain=True`)."""

    def __init__(
        self, sock: socket.socket, timeout: float, limiter: ConnectionLimiter | None = None
    ) -> None:
        self.sock: socket.socket = sock
        self.timeout = timeout
        self.evidence: list[str] = []
        self._buffer = b""
        self._masker = SecretMasker()
        self._limiter = limiter  # the slot this connection holds until close
        sock.settimeout(timeout)
        with _open_lock:
            _open.add(self)

    @classmethod
    def open(
        cls, target: AuditTarget, *, plain: bool = False, context: ssl.SSLContext | None = None
    ) -> RawConnection:
        """A connection holding a slot of `target.limiter`, its greeting waiting to be
        read (unless `plain` on an implicit-TLS endpoint: the caller's handshake comes
        first). Raises ServerUnavailable when the server stays at its limit."""
        seen: list[str] = []
        reason = ""
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
            time.sleep(delay)
            try:
                conn = cls._connect(target, plain, context)
            except _RETRYABLE as exc:
                reason = f"connection failed: {exc.strerror or exc or type(exc).__name__}"
                seen.append(f"== attempt {attempt}: {reason}")
                continue
            problem = conn._greeting_problem(target) if conn._greets(target, plain) else None
            if problem is None:
                return conn
            reason = problem
            seen.extend([*conn.evidence, f"== attempt {attempt}: {problem}"])
            conn.close()
        raise ServerUnavailable(
            f"no usable connection after {len(RETRY_DELAYS) + 1} attempts (the server's "
            f"connection limit?): {reason}",
            seen,
        )

    @classmethod
    def _connect(
        cls, target: AuditTarget, plain: bool, context: ssl.SSLContext | None
    ) -> RawConnection:
        endpoint = target.endpoint
        if target.source_address:
            endpoint = endpoint._replace(source_address=target.source_address)
        target.limiter.acquire()
        try:  # as every command connects: the source address, -4/-6, the proxy
            sock = open_connection(endpoint, timeout=target.probe_timeout)
        except BaseException:
            target.limiter.release()
            raise
        conn = cls(sock, target.probe_timeout, target.limiter)
        try:
            if endpoint.security == "tls" and not plain:
                conn.start_tls(context or _verifying_context(target), endpoint.host)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _greets(target: AuditTarget, plain: bool) -> bool:
        return not (plain and target.endpoint.security == "tls")

    def _greeting_problem(self, target: AuditTarget) -> str | None:
        """Wait for the whole greeting, leaving it buffered; what is wrong with it, if
        anything a retry may cure."""
        while not _whole_greeting(self._buffer, target.protocol):
            if len(self._buffer) > MAX_LINE:
                return None  # not a greeting anyone can read: the probe says so
            try:
                chunk = self.sock.recv(4096)
            except OSError as exc:
                if isinstance(exc, TimeoutError):
                    return f"no greeting within {self.timeout:g} s"
                return f"connection failed before the greeting: {exc.strerror or exc}"
            if not chunk:
                return "connection closed before the greeting"
            self._buffer += chunk
        first = self._buffer.split(b"\n", 1)[0].rstrip(b"\r")
        if target.protocol == "smtp" and first[:1] == b"4":
            return f"greeting refused: {_text(first)}"
        if target.protocol == "pop3" and first.startswith(b"-ERR"):
            return f"greeting refused: {_text(first)}"
        return None

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with _open_lock:
            _open.discard(self)
            limiter, self._limiter = self._limiter, None
        with contextlib.suppress(OSError):
            self.sock.close()
        if limiter is not None:  # given back once, whoever closes first
            limiter.release()

    def shut_down(self) -> None:
        """End the connection under a reader in another thread (which wakes with EOF).
        The plain socket's shutdown: SSLSocket.shutdown() would drop its TLS object
        under that reader's feet."""
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        self.close()

    def send(self, data: bytes) -> None:
        """Send bytes as they are (one write); record each line, secrets masked."""
        for line in data.split(b"\n"):
            if line:
                self._record("C:", self._masker.sent(_text(line)))
        self.sock.sendall(data)

    def read_line(self) -> bytes | None:
        """One line without its end (CRLF or LF); None when the server says nothing
        within the timeout or closes."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                break
            try:
                chunk = self.sock.recv(4096)
            except OSError:  # a timeout too: silence is an answer
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        line = line.rstrip(b"\r")
        self._masker.received(_text(line))
        self._record("S:", _text(line))
        return line

    def read_smtp_reply(self) -> tuple[int, list[bytes]] | None:
        """A whole (multi-line) SMTP reply: its code and its lines; None on silence or a
        line that is not a reply."""
        lines: list[bytes] = []
        while True:
            line = self.read_line()
            if line is None or len(line) < 3 or not line[:3].isdigit():
                return None
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def read_line_within(self, seconds: float) -> bytes | None:
        """`read_line` bounded by `seconds` (at most the timeout) instead of the timeout:
        for "does the server say anything unasked?" questions."""
        self.sock.settimeout(min(seconds, self.timeout))
        try:
            return self.read_line()
        finally:
            self.sock.settimeout(self.timeout)

    def take_buffered(self) -> bytes:
        """Bytes received but not yet read as lines, which are then forgotten (e.g. the
        cleartext that arrived after a STARTTLS reply, before the handshake)."""
        data, self._buffer = self._buffer, b""
        return data

    def start_tls(self, context: ssl.SSLContext, server_hostname: str | None = None) -> None:
        """Handshake on this socket. Bytes already buffered in clear stay buffered (the
        STARTTLS-injection probe looks at them)."""
        self.sock = context.wrap_socket(
            self.sock, server_hostname=server_hostname if context.check_hostname else None
        )
        self.sock.settimeout(self.timeout)
        version = getattr(self.sock, "version", lambda: None)()
        self._record("==", f"TLS handshake done: {version}")

    def note(self, text: str) -> None:
        self._record("==", text)

    def _record(self, prefix: str, text: str) -> None:
        if len(self.evidence) < MAX_EVIDENCE:
            self.evidence.append(f"{prefix} {text}")


def shut_down_all() -> int:
    """Shut down every connection still open (the probes that overran their deadline);
    returns how many there were."""
    with _open_lock:
        still_open = list(_open)
    for conn in still_open:
        conn.shut_down()
    return len(still_open)


def _whole_greeting(buffer: bytes, protocol: MailProtocol) -> bool:
    """SMTP: a final reply line (no `-` after the code) has arrived; POP3: one line."""
    lines = buffer.split(b"\n")[:-1]  # the complete ones
    if protocol != "smtp":
        return bool(lines)
    return any(line.rstrip(b"\r")[3:4] != b"-" for line in lines)


def _text(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")


def _verifying_context(target: AuditTarget) -> ssl.SSLContext:
    from mailcli.network import tls_context

    return tls_context(target.endpoint)
