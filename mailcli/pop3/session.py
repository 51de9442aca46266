"""A POP3 session on poplib: connect, STLS, authenticate, the commands, QUIT.

poplib speaks the protocol; this module replaces its line I/O so that every line goes
through the transcript (masked) with bounded memory (a status line over 8 KiB is a
protocol error, 76), streams RETR/TOP through `multiline` instead of building lists of
lines, and turns `-ERR` replies into errors with exit codes. RFC 2449/3206 response
codes decide: `[AUTH]` 77, `[IN-USE]` and `[SYS/TEMP]` 75, `[SYS/PERM]` 69.

Deletion semantics are the protocol's: DELE only marks; the marks take effect when QUIT
is answered +OK. A session that ends any other way (an error, Ctrl-C) is closed without
QUIT, so it deletes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import poplib
import re
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from mailcli.endpoint import Endpoint, missing_user
from mailcli.errors import (
    MailcliError,
    NoInputError,
    PermissionDeniedError,
    ProtocolError,
    StoppedEarly,
    TempFailError,
    UnavailableError,
)
from mailcli.network import await_greeting, tls_context, trace_tls, translate
from mailcli.pop3.multiline import BLOCK_SIZE, MultilineCopier
from mailcli.pop3.wirelines import WireLineCopier, shown
from mailcli.transcript import Transcript

PHASES = ("connect", "capa", "tls", "auth")  # for --quit-after
MAX_STATUS_LINE = 8192
MAX_LISTING = 16 * 1024 * 1024  # octets of a LIST/UIDL/CAPA response held in memory
AUTH_METHODS = ("user", "apop", "plain", "xoauth2")
_RESPONSE_CODE = re.compile(rb"^-ERR \[([A-Za-z/-]+)\]")

PasswordSource = Callable[[], str]


class TracedPOP3(poplib.POP3):
    """poplib.POP3 whose lines pass through a Transcript, with bounded status lines."""

    def __init__(
        self, host: str, port: int, *, timeout: float, transcript: Transcript, **kwargs: Any
    ) -> None:
        self.transcript = transcript
        super().__init__(host, port, timeout=timeout, **kwargs)
        self.use_new_reader()

    def use_new_reader(self) -> None:
        """A reader with large blocks, for streaming RETR; made after the greeting (and
        after STLS), when nothing else can be buffered."""
        self.reader = cast(io.BufferedReader, self.sock.makefile("rb", buffering=BLOCK_SIZE))
        self.file = self.reader  # poplib's own methods read through self.file

    def send_lines(self, *lines: str) -> None:
        """Commands in one write: pipelining (RFC 2449) when there are several."""
        encoded = [line.encode(self.encoding) for line in lines]
        for line in encoded:
            self.transcript.sent(line)
        self.sock.sendall(b"".join(line + b"\r\n" for line in encoded))

    def read_ok(self) -> bytes:
        """One status line; -ERR raises poplib.error_proto, as poplib does."""
        reply, _ = self._getline()
        if not reply.startswith(b"+"):
            raise poplib.error_proto(reply)
        return reply

    def _create_socket(self, timeout: float) -> socket.socket:  # called by __init__
        self.transcript.info(f"connecting to {self.host}:{self.port}")
        sock: socket.socket = super()._create_socket(timeout)  # type: ignore[misc]
        if not isinstance(self, poplib.POP3_SSL):  # a wrong TLS mode shows before +OK
            try:
                await_greeting(sock, self.host, self.port, timeout, self.transcript)
            except BaseException:
                sock.close()
                raise
        return sock

    def _putline(self, line: bytes) -> None:  # what poplib's own commands call
        self.transcript.sent(line)
        self.sock.sendall(line + b"\r\n")

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(MAX_STATUS_LINE + 1)
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


class Pop3Session:
    """`with Pop3Session(endpoint, password=..., transcript=...) as pop:` gives an
    authenticated session; leaving the block normally sends QUIT (committing DELEs),
    leaving it by an exception just closes the connection (committing nothing)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        password: PasswordSource,
        transcript: Transcript,
        quit_after: str | None = None,
        login: bool = True,
        on_phase: Callable[[str, Pop3Session], object] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.password = password
        self.transcript = transcript
        self.quit_after = quit_after  # one of PHASES: QUIT there, skip the rest
        self.login_wanted = login  # False: stop before authenticating (`check`)
        self.on_phase = on_phase  # told of each phase reached (`check` reports them)
        self.capabilities: dict[str, list[str]] = {}
        self.capabilities_before_tls: dict[str, list[str]] | None = None
        self.connect_seconds = 0.0
        self.quit_reply: str | None = None
        self._pop: TracedPOP3 | None = None

    # -- session -----------------------------------------------------------------
    def __enter__(self) -> Pop3Session:
        started = time.monotonic()
        self._pop = self.guarded(self._connect)
        self.connect_seconds = time.monotonic() - started
        try:
            self._stop_after("connect")
            self.capabilities = self._capa()
            self._stop_after("capa")
            if self.endpoint.security == "starttls":
                self._starttls()
            self._stop_after("tls")
            if self.login_wanted:
                self.login()
            self._stop_after("auth")
        except StoppedEarly:
            self.quit()
            raise
        except BaseException:
            self.close()
            raise
        return self

    def _stop_after(self, phase: str) -> None:
        if self.on_phase is not None:
            self.on_phase(phase, self)
        if self.quit_after == phase:
            raise StoppedEarly(phase)

    def login(self) -> None:
        self.guarded(self._login)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None and self.quit_reply is None and self._pop is not None:
            self.quit()
        self.close()

    @property
    def pop(self) -> TracedPOP3:
        if self._pop is None:
            raise TempFailError("the POP3 session is closed")
        return self._pop

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.capabilities

    def guarded(self, action: Callable[[], Any]) -> Any:
        """Run a poplib step, translating stdlib exceptions into MailcliErrors."""
        try:
            return action()
        except MailcliError:
            raise
        except poplib.error_proto as exc:
            raise response_error(exc) from None
        except (OSError, EOFError) as exc:
            raise translate(exc, self.endpoint) from exc

    def quit(self) -> str:
        """QUIT: the moment DELE marks take effect. Returns the server's answer."""
        reply = self.guarded(self.pop.quit)
        self.quit_reply = _text(reply)
        self._pop = None
        return self.quit_reply

    def close(self) -> None:
        """Drop the connection without QUIT: nothing marked for deletion is deleted."""
        if self._pop is not None:
            with contextlib.suppress(OSError):  # e.g. a socket a failed TLS wrap took down
                self._pop.close()
            self._pop = None

    def command(self, line: str) -> str:
        """A single-line command; returns the +OK reply, raises for -ERR."""
        pop = self.pop
        pop.send_lines(line)
        return _text(self.guarded(pop.read_ok))

    def command_bytes(self, line: str) -> bytes:
        """`command`, with the +OK reply as the server's exact bytes (line end removed):
        for replies carrying data such as `UIDL n`, which may hold any byte."""
        pop = self.pop
        pop.send_lines(line)
        return cast(bytes, self.guarded(pop.read_ok))

    def listing(self, line: str) -> list[bytes]:
        """A multi-line response held in memory (LIST, UIDL, CAPA, TOP n 0), bounded."""
        self.command(line)
        return self.read_listing()

    def read_listing(self) -> list[bytes]:
        """The multi-line body after a +OK already read; each line traced."""
        buffer = bytearray()
        copier = MultilineCopier(self.pop.reader, buffer.extend, limit=MAX_LISTING)
        self.guarded(copier.run)
        # Lines end at LF (CR LF on the wire); a lone CR inside a line is data (a UID
        # may hold one), which bytes.splitlines() would wrongly treat as a line end.
        lines = [line.removesuffix(b"\r") for line in bytes(buffer).split(b"\n")]
        if lines and not lines[-1]:
            lines.pop()
        for line in [*lines, b"."]:
            self.transcript.received(line)
        return lines

    def exchange(self, line: str, write: Callable[[bytes], object], *, multiline: bool) -> str:
        """Any command, as typed in `shell`; its reply goes to `write` as received (see
        `wirelines`): the status line (-ERR included, not raised), then after +OK to a
        multi-line command the body, still dot-stuffed, and its "." line. Returns the
        status line."""
        pop = self.pop
        pop.send_lines(line)
        reply = self.guarded(pop._getline)[0]
        write(shown(reply) + b"\n")
        if multiline and reply.startswith(b"+OK"):
            self.guarded(WireLineCopier(pop.reader, write).run)
            self.transcript.received(b".")
        return _text(reply)

    # -- connect, TLS, login ------------------------------------------------------
    def _connect(self) -> TracedPOP3:
        endpoint = self.endpoint
        if endpoint.security == "tls":
            self.transcript.tls = True
            pop: TracedPOP3 = TracedPOP3SSL(
                endpoint.host,
                endpoint.port,
                timeout=endpoint.timeout,
                transcript=self.transcript,
                context=tls_context(endpoint),
            )
            self._describe_tls(pop)
        else:
            pop = TracedPOP3(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, transcript=self.transcript
            )
        return pop

    def _describe_tls(self, pop: TracedPOP3) -> None:
        trace_tls(pop.sock, self.transcript)

    def _capa(self) -> dict[str, list[str]]:
        """CAPA (RFC 2449); a server without it has no extensions to offer."""
        try:
            lines = self.listing("CAPA")
        except NegativeReply:
            return {}
        capabilities: dict[str, list[str]] = {}
        for line in lines:
            name, *arguments = line.decode("utf-8", "replace").split()
            capabilities[name.upper()] = arguments
        return capabilities

    def _starttls(self) -> None:
        if "STLS" not in self.capabilities:
            raise UnavailableError(
                f"{self.endpoint.host}:{self.endpoint.port} does not offer STLS; "
                "no credentials were sent",
                hint="use --security tls for implicit TLS, or --security none for cleartext",
            )
        pop = self.pop
        self.capabilities_before_tls = self.capabilities
        self.command("STLS")
        context = tls_context(self.endpoint)
        pop.sock = self.guarded(
            lambda: context.wrap_socket(pop.sock, server_hostname=self.endpoint.host)
        )
        pop.use_new_reader()
        self.transcript.tls = True
        self._describe_tls(pop)
        self.capabilities = self._capa()  # they may differ after TLS (RFC 2595)

    def _login(self) -> None:
        endpoint = self.endpoint
        if not endpoint.user:
            raise missing_user(endpoint)
        method = self._auth_method()
        secret = self.password()
        pop = self.pop
        try:
            if method == "user":
                pop.user(endpoint.user)
                pop.pass_(secret)
            elif method == "apop":
                pop.apop(endpoint.user, secret)
            else:
                self._sasl(method, secret)
        except poplib.error_proto as exc:
            raise response_error(exc, default=_auth_failed(endpoint.user)) from None

    def _auth_method(self) -> str:
        forced = (self.endpoint.auth or "").lower()
        if forced and forced not in AUTH_METHODS:
            raise UnavailableError(
                f"unknown POP3 --auth {forced!r}; use one of {', '.join(AUTH_METHODS)}"
            )
        if forced == "apop" and b"<" not in self.pop.welcome:
            raise UnavailableError("the server does not offer APOP (no timestamp in its banner)")
        if forced:
            return forced
        mechanisms = [m.upper() for m in self.capabilities.get("SASL", [])]
        return "plain" if self.transcript.tls and "PLAIN" in mechanisms else "user"

    def _sasl(self, method: str, secret: str) -> None:
        user = self.endpoint.user or ""
        if method == "plain":
            payload = f"\0{user}\0{secret}"
        else:
            payload = f"user={user}\x01auth=Bearer {secret}\x01\x01"
        initial = base64.b64encode(payload.encode()).decode("ascii")
        pop = self.pop
        pop.send_lines(f"AUTH {method.upper()} {initial}")
        reply, _ = pop._getline()
        if reply.startswith(b"+ ") or reply == b"+":
            pop.send_lines("")  # an error challenge (XOAUTH2): answer empty, read the -ERR
            reply, _ = pop._getline()
        if not reply.startswith(b"+OK"):
            raise poplib.error_proto(reply)


def response_error(exc: poplib.error_proto, default: MailcliError | None = None) -> MailcliError:
    """-ERR (and poplib's own complaints) -> the error carrying the right exit status."""
    reply = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else str(exc).encode()
    text = _text(reply)
    code = _RESPONSE_CODE.match(reply)
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


def _auth_failed(user: str | None) -> MailcliError:
    return PermissionDeniedError(
        f"authentication as {user!r} failed",
        hint="check the user and the password source (`mailcli password where`)",
    )


def no_such_message(number: int | str, error: NegativeReply) -> NoInputError:
    return NoInputError(f"no message {number} on the server ({error.reply})")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
