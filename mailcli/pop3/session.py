"""A POP3 session on poplib: connect, STLS, authenticate, the commands, QUIT.

The session owns its wire (`wire.TracedPOP3`: poplib with traced, bounded line I/O;
private). Callers send commands, read +OK lines, pipeline one verb over many message
numbers and stream multi-line bodies (RETR/TOP through `multiline`) through its
methods, and every write and every read goes through one guard (`_guarded`) that turns
stdlib exceptions into MailcliErrors: a connection reset is 75 wherever it happens,
never an internal error. -ERR replies become errors with exit codes (`wire`); a plain
-ERR to a command about a message number means there is no such message (66).

Deletion semantics are the protocol's: DELE only marks; the marks take effect when QUIT
is answered +OK. A session that ends any other way (an error, Ctrl-C) is closed without
QUIT, so it deletes nothing.

QUIT's reply matters only when a DELE was sent (`marked`): then it is the commit point,
read after everything else, and its failure is the command's. With nothing marked, QUIT
only ends the conversation: the session's last command may carry it in its own write
(`quit=True`, when the server offers PIPELINING), its reply is read after the command's
at no extra round trip, and a -ERR, a hang-up or silence there loses nothing: it is
noted in the transcript, never an error.
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, cast

from mailcli.auth.credential import Credential
from mailcli.endpoint import Endpoint
from mailcli.errors import (
    MailcliError,
    NoInputError,
    StoppedEarly,
    TempFailError,
    UnavailableError,
)
from mailcli.network import error_from_network, reply_text, session_timeout, tls_context, trace_tls
from mailcli.pop3.auth import authenticate
from mailcli.pop3.multiline import ShownLineCopier, UnstuffingCopier, shown_line
from mailcli.pop3.phases import Pop3Phase
from mailcli.pop3.wire import (
    NegativeReply,
    TracedPOP3,
    TracedPOP3SSL,
    error_from_pop3_reply,
)
from mailcli.transcript import Transcript

MAX_LISTING = 16 * 1024 * 1024  # octets of a LIST/UIDL/CAPA response held in memory
PIPELINE_WINDOW = 64  # commands in flight when the server offers PIPELINING (RFC 2449)


class Pop3Session:
    """`with Pop3Session(endpoint, credential=..., transcript=...) as pop:` gives an
    authenticated session; leaving the block normally sends QUIT (committing DELEs),
    or reads the answer to the QUIT that went with the last command; leaving it by an
    exception just closes the connection (committing nothing)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        credential: Credential,
        transcript: Transcript,
        quit_after: Pop3Phase | None = None,
        login: bool = True,
        on_phase: Callable[[Pop3Phase, Pop3Session], object] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.credential = credential
        self.transcript = transcript
        self.quit_after = quit_after  # QUIT there, skip the rest
        self.login_wanted = login  # False: stop before authenticating (`check`)
        self.on_phase = on_phase  # told of each phase reached (`check` reports them)
        self.capabilities: dict[str, list[str]] = {}
        self.tls_active = False  # the connection is inside TLS (implicit or after STLS)
        self.connect_seconds = 0.0
        self.quit_reply: str | None = None
        self.marked = False  # a DELE went out: QUIT commits, so it goes alone and counts
        self._quit_sent = False  # QUIT went out with the last command; its reply is due
        self._pop: TracedPOP3 | None = None  # the wire: only this module touches it

    # -- session -----------------------------------------------------------------
    def __enter__(self) -> Pop3Session:
        started = time.monotonic()
        self._pop = self._guarded(self._connect)
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

    def _stop_after(self, phase: Pop3Phase) -> None:
        if self.on_phase is not None:
            self.on_phase(phase, self)
        if self.quit_after == phase:
            raise StoppedEarly(phase)

    def login(self) -> None:
        # An OAuth2 token request made for this login waits no longer than the session.
        with session_timeout(self.endpoint.timeout):
            self._guarded(lambda: authenticate(self, self.credential))

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None and self.quit_reply is None and self._pop is not None:
            self.quit()
        self.close()

    @property
    def _wire(self) -> TracedPOP3:
        if self._pop is None:
            raise TempFailError("the POP3 session is closed")
        return self._pop

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.capabilities

    @property
    def welcome(self) -> bytes:
        """The server's greeting line, as sent."""
        return self._wire.welcome

    @property
    def sock(self) -> socket.socket:
        """The connection's socket, for describing its TLS (`check`). Reading or writing
        it directly would bypass the transcript and the error translation."""
        return self._wire.sock

    def _guarded(self, action: Callable[[], Any]) -> Any:
        """Run a step on the wire, translating stdlib exceptions into MailcliErrors: the
        one path every write and read of this session takes."""
        try:
            return action()
        except MailcliError:
            raise
        except poplib.error_proto as exc:
            raise error_from_pop3_reply(exc) from None
        except (OSError, EOFError) as exc:
            raise error_from_network(exc, self.endpoint) from exc

    def quit(self) -> str:
        """QUIT (unless it went with the last command): the moment DELE marks take
        effect. Returns the server's answer; with nothing marked, whatever ends the
        session is its answer (see the module's docstring)."""
        wire = self._wire
        try:
            reply = reply_text(self._guarded(wire.read_ok if self._quit_sent else wire.quit))
        except MailcliError as exc:
            if self.marked:
                raise
            reply = exc.reply if isinstance(exc, NegativeReply) else str(exc)
            self.transcript.info(f"QUIT failed ({reply}); nothing was marked for deletion")
        finally:
            self.close()
        self.quit_reply = reply
        return reply

    def close(self) -> None:
        """Drop the connection without QUIT: nothing marked for deletion is deleted."""
        if self._pop is not None:
            with contextlib.suppress(OSError):  # e.g. a socket a failed TLS wrap took down
                self._pop.close()
            self._pop = None

    # -- commands -------------------------------------------------------------------
    def send(self, *lines: str, quit: bool = False) -> None:
        """Commands in one write: pipelining (RFC 2449) when there are several. With
        `quit` (the session's last command), QUIT goes in the same write when the server
        offers PIPELINING and no DELE was sent; `quit()` then reads its reply."""
        self.marked = self.marked or any(_verb(line) == "DELE" for line in lines)
        if quit and self.pipelining and not self.marked:
            lines = (*lines, "QUIT")
            self._quit_sent = True
        wire = self._wire
        self._guarded(lambda: wire.send_lines(*lines))

    def read_ok(self) -> bytes:
        """The next status line: +OK as the server's exact bytes (line end removed);
        -ERR raises (`error_from_pop3_reply`)."""
        return cast(bytes, self._guarded(self._wire.read_ok))

    def read_reply(self) -> bytes:
        """The next status line as sent (line end removed), whatever it says: +OK,
        -ERR or a SASL continuation (`pop3.auth`)."""
        return cast(bytes, self._guarded(self._wire.read_line))

    def expect_ok(self, number: int) -> bytes:
        """`read_ok` for a command about message `number`: a plain -ERR there means
        the server has no such message (66)."""
        try:
            return self.read_ok()
        except NegativeReply as exc:
            raise NoInputError(f"no message {number} on the server ({exc.reply})") from None

    def command(self, line: str, *, quit: bool = False) -> str:
        """A single-line command; returns the +OK reply, raises for -ERR. `quit`: the
        session's last command (`send`)."""
        return reply_text(self.command_bytes(line, quit=quit))

    def command_bytes(self, line: str, *, quit: bool = False) -> bytes:
        """`command`, with the +OK reply as the server's exact bytes (line end removed):
        for replies carrying data such as `UIDL n`, which may hold any byte."""
        self.send(line, quit=quit)
        return self.read_ok()

    def message_command(
        self, verb: str, number: int, *arguments: object, quit: bool = False
    ) -> bytes:
        """`VERB n [ARGUMENTS]` about one message: its +OK line; 66 when there is no
        such message. A multi-line reply's body follows (`read_body`). `quit`: the
        session's last command (`send`)."""
        self.send(_message_line(verb, number, arguments), quit=quit)
        return self.expect_ok(number)

    def pipelined(
        self, verb: str, numbers: Sequence[int], *arguments: object, quit: bool = False
    ) -> Iterator[int]:
        """`VERB n [ARGUMENTS]` for each number; yields each number once its +OK is read
        (66 at the first -ERR). With PIPELINING, PIPELINE_WINDOW commands are kept in
        flight, refilled half a window at a time in one write, so the server never
        waits for a round trip; without it, one at a time. After a multi-line verb
        (RETR, TOP) the caller reads each body (`read_body`) before taking the next.
        `quit`: these are the session's last commands (`send`)."""
        window = PIPELINE_WINDOW if self.pipelining else 1
        sent = 0
        for received, number in enumerate(numbers):
            if sent - received <= window // 2 and sent < len(numbers):
                upto = min(len(numbers), received + window)
                lines = (_message_line(verb, n, arguments) for n in numbers[sent:upto])
                self.send(*lines, quit=quit and upto == len(numbers))
                sent = upto
            self.expect_ok(number)
            yield number

    def read_body(self, write: Callable[[bytes], object], *, limit: int | None) -> Body:
        """The multi-line body after a +OK already read, un-stuffed, streamed to
        `write` (its own errors pass through unchanged); at most `limit` octets (76)."""
        wire = self._wire
        copier = UnstuffingCopier(wire.reader, write, limit=limit)
        with wire.pace.bulk():  # long while it moves (network.Pace)
            self._guarded(copier.run)
        return Body(copier.octets, copier.lines)

    def listing(self, line: str) -> list[bytes]:
        """A multi-line response held in memory (LIST, UIDL, CAPA, TOP n 0), bounded."""
        self.command(line)
        return self.read_listing()

    def read_listing(self) -> list[bytes]:
        """The multi-line body after a +OK already read; each line traced."""
        buffer = bytearray()
        self.read_body(buffer.extend, limit=MAX_LISTING)
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
        `multiline`): the status line (-ERR included, not raised), then after +OK to a
        multi-line command the body, still dot-stuffed, and its "." line. Returns the
        status line."""
        self.send(line)
        wire = self._wire
        reply: bytes = self._guarded(wire.read_line)
        write(shown_line(reply) + b"\n")
        if multiline and reply.startswith(b"+OK"):
            with wire.pace.bulk():
                self._guarded(ShownLineCopier(wire.reader, write).run)
            self.transcript.received(b".")
        return reply_text(reply)

    # -- connect, TLS, login ------------------------------------------------------
    def _connect(self) -> TracedPOP3:
        endpoint = self.endpoint
        if endpoint.security == "tls":
            self.transcript.tls = True
            pop: TracedPOP3 = TracedPOP3SSL(
                endpoint, transcript=self.transcript, context=tls_context(endpoint)
            )
            self.tls_active = True
            self._describe_tls(pop)
        else:
            pop = TracedPOP3(endpoint, transcript=self.transcript)
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
                f"{self.endpoint.where} does not offer STLS; no credentials were sent",
                hint="use --security tls for implicit TLS, or --security none for cleartext",
            )
        pop = self._wire
        self.command("STLS")
        context = tls_context(self.endpoint)
        pop.sock = self._guarded(
            lambda: context.wrap_socket(pop.sock, server_hostname=self.endpoint.host)
        )
        pop.use_new_reader()
        self.tls_active = True
        self.transcript.tls = True
        self._describe_tls(pop)
        self.capabilities = self._capa()  # they may differ after TLS (RFC 2595)


class Body(NamedTuple):
    """What `read_body` copied: un-stuffed octets, and lines (for the transcript)."""

    octets: int
    lines: int


def _message_line(verb: str, number: int, arguments: Sequence[object]) -> str:
    return " ".join([verb, str(number), *(str(argument) for argument in arguments)])


def _verb(line: str) -> str:
    return line.partition(" ")[0].upper()
