"""The LMTP destination of `fetch` (`--to lmtp:/path/to/socket` or `lmtp:HOST:PORT`,
`lmtp:[::1]:24`): each message is handed to a local delivery server (Dovecot's `lmtp`,
Cyrus, Postfix's...) over RFC 2033 LMTP.

Contract:
- A message is first received whole into an unnamed private file (O_TMPFILE, mode 0600,
  in the fetch state folder), as for an MDA: a message cut short never reaches the
  server, whatever the POP3 side did.
- MAIL FROM is the message's first Return-Path as it stands, when a valid path, else
  the null sender `<>` (`fetch.sender.mail_from_address`).
- One LMTP session serves the whole run (LHLO once; then per message MAIL FROM, RCPT TO
  and DATA pipelined in one write, as RFC 2033 servers must accept). The message goes
  byte for byte as POP3 gave it (CRLF lines, dot-stuffed on the wire).
- One recipient (`--lmtp-rcpt`, key `lmtp_rcpt`, else the account's POP3 user). A
  message counts as stored only on the 250 that follows its final dot (RFC 2033 answers
  once per accepted recipient). With several recipients, one deferring (4xx) while
  another stored the message could be neither recorded (it would be lost for the
  deferring one) nor retried (the other would get it twice); one recipient keeps
  "stored" a yes or a no.
- A batch is one message (`batch_size`): recorded in the fetch state right after its
  250. The 250 cannot be taken back, so a kill between it and the state's fsync can
  deliver that message twice: the MDA's window, and the only one.
- A 5xx to MAIL FROM (the message's own sender) or after the final dot (its content)
  refuses that message alone: `MessageRefused`, so the run leaves it on the server,
  unrecorded and not deleted, names it with the reply, delivers the rest over a new
  session and ends 69; every run does the same until the server takes it. Sending it
  again unchanged cannot succeed, and stopping at it would block the mailbox.
- Every other failure leaves the message on the server, unrecorded, and ends the run:
  a 4xx (or a connection lost, a timeout) is 75; a 5xx to RCPT TO (the recipient, the
  same for every message) or to DATA is 69 and names the reply; a socket that is
  missing or refuses is 69; a socket mailcli may not open 77; an unparsable reply 76.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from mailcli.endpoint import host_port
from mailcli.errors import (
    DataError,
    MailcliError,
    PermissionDeniedError,
    RejectedError,
    TempFailError,
    UnavailableError,
    UsageError,
)
from mailcli.fetch.destination import MessageRefused, MessageWriter, RecoveryHooks
from mailcli.fetch.sender import HEADER_LIMIT, mail_from_address
from mailcli.network import (
    MAX_REPLY_LINE,
    Pace,
    dot_stuff,
    paced_reader,
    read_reply,
    reply_line,
    reply_text,
    upload_piece,
)
from mailcli.transcript import Transcript

_HOST_PORT = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/\s]+)):(?P<port>[0-9]{1,5})"
)
_ADDRESS = re.compile(r"[!-;=?-~]{1,254}")  # printable ASCII without space, "<" and ">"


class LmtpTarget(NamedTuple):
    """Where the LMTP server listens: a unix socket's absolute path, or host and port."""

    socket_path: str | None
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return self.socket_path or host_port(self.host, self.port)


def parse_target(text: str) -> LmtpTarget:
    """`lmtp:`'s target: a path (it holds a "/"; `~` expanded, made absolute) or
    HOST:PORT ([ADDRESS]:PORT for IPv6). Anything else is a usage error (64)."""
    if "/" in text:
        return LmtpTarget(os.path.abspath(os.path.expanduser(text)))
    match = _HOST_PORT.fullmatch(text)
    if match and 0 < int(match["port"]) < 65536:
        return LmtpTarget(None, match["v6"] or match["host"], int(match["port"]))
    raise UsageError(
        f"lmtp:{text}: expected lmtp:/path/to/socket or lmtp:HOST:PORT (lmtp:[::1]:24)"
    )


def checked_recipient(address: str | None) -> str:
    """The RCPT TO address: a bare address, no line break, space or angle bracket (65)."""
    if not address:
        raise UsageError("lmtp: needs a recipient: --lmtp-rcpt ADDR, or the account's user")
    if not _ADDRESS.fullmatch(address):
        raise DataError(f"--lmtp-rcpt {address[:80]!r}: not an address LMTP can carry")
    return address


class Lmtp(RecoveryHooks):
    """Delivers each message over one LMTP session (see the module docstring)."""

    batch_size = 1

    def __init__(
        self,
        target: str,
        *,
        recipient: str | None,
        transcript: Transcript,
        timeout: float,
        spool: Path,
    ) -> None:
        self.target = parse_target(target)
        self.recipient = checked_recipient(recipient)
        self.transcript = transcript
        self.timeout = timeout
        self.spool = spool
        self.description = f"lmtp:{self.target} rcpt {self.recipient}"
        self._client: TracedLMTP | None = None

    def open_message(self, key: str) -> MessageWriter:
        return _LmtpWriter(self, self.spool)

    def commit(self) -> None:
        """The server stored the message (250) before `finish` returned."""

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError, MailcliError):
                client.quit()
            client.close()

    def deliver(self, message: IO[bytes]) -> None:
        """MAIL FROM, RCPT TO, DATA and the message; returns only on its 250."""
        sender = mail_from_address(message.read(HEADER_LIMIT))
        message.seek(0)
        try:
            self._transaction(sender, message)
        except TimeoutError as exc:
            self._drop()
            raise TempFailError(
                f"LMTP server {self.target}: no complete reply within {self.timeout:g} s: "
                "message kept on the server (the LMTP server may have stored it already)"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TempFailError(
                f"LMTP server {self.target}: connection lost ({exc}) before its reply: "
                "message kept on the server"
            ) from exc
        except BaseException:
            self._drop()  # the next message, if the run goes on, gets a new session
            raise

    def _transaction(self, sender: str, message: IO[bytes]) -> None:
        """On the run's session; when the server closed it while it sat idle (the POP3
        side can be slow), once more on a new one."""
        if self._client is None:
            self._open_session().transaction(sender, self.recipient, message)
            return
        try:
            self._client.transaction(sender, self.recipient, message)
        except StaleSession as exc:
            self._drop()
            self.transcript.info(f"the LMTP session was closed ({exc}): connecting again")
            self._open_session().transaction(sender, self.recipient, message)

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _open_session(self) -> TracedLMTP:
        client = TracedLMTP(local_hostname=socket.gethostname(), timeout=self.timeout)
        client.transcript, client.pace = self.transcript, Pace(self.timeout)
        where = self.target.socket_path or self.target.host
        self.transcript.info(f"connecting to LMTP {self.target}")
        try:
            code, text = client.connect(where, self.target.port)
            check_reply("the LMTP greeting", (code, text), 220)
            check_reply("LHLO", client.ehlo(), 250)
        except BaseException as exc:
            client.close()
            if isinstance(exc, (smtplib.SMTPException, OSError)):
                raise self._connect_error(exc) from exc
            raise
        self._client = client
        return client

    def _connect_error(self, exc: BaseException) -> MailcliError:
        where = f"LMTP server {self.target}"
        if isinstance(exc, socket.gaierror):
            return UnavailableError(f"{where}: cannot resolve {self.target.host!r}")
        if isinstance(exc, FileNotFoundError):
            return UnavailableError(f"{where}: no such socket; is the LMTP server running?")
        if isinstance(exc, PermissionError):
            return PermissionDeniedError(f"{where}: permission denied")
        if isinstance(exc, ConnectionRefusedError):
            return UnavailableError(f"{where}: connection refused")
        if isinstance(exc, TimeoutError):
            return TempFailError(f"{where}: timed out after {self.timeout:g} s")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return TempFailError(f"{where} closed the connection: {exc}")
        return UnavailableError(f"{where}: cannot connect: {exc}")


def check_reply(
    stage: str,
    reply: tuple[int, bytes],
    expected: int,
    *,
    refusal: type[RejectedError] = RejectedError,
) -> None:
    """`expected`, or the error that leaves the message on the server: 4xx 75, else
    69 as `refusal` (`MessageRefused` where the refusal is about this message alone)."""
    code, text = reply
    if code == expected:
        return
    # One line, whatever the server sent: its lines joined, control characters replaced.
    shown = re.sub(r"[\x00-\x1f\x7f]", "?", f"{code} {reply_text(text)}".replace("\n", " / "))
    shown = shown[:300]
    what = f"{stage}: the LMTP server answered {shown}; message kept on the server"
    if 400 <= code < 500:
        raise TempFailError(what)
    raise refusal(what, code=code, text=reply_text(text))


class StaleSession(smtplib.SMTPServerDisconnected):
    """The server had closed the session (an idle timeout: 421, or a hang-up) before a
    message's MAIL FROM: nothing of the message was sent, so a new session may take it."""


class TracedLMTP(smtplib.LMTP):
    """smtplib's LMTP with every command and reply in the transcript (`--trace`), replies
    bounded (a line over 8 KiB, a malformed one or over 1,000 lines: 76) and read under
    the timeout's `Pace`."""

    transcript: Transcript
    pace: Pace

    def send(self, s: Any) -> None:
        self.transcript.sent(s)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None:
            if self.sock is None:
                raise smtplib.SMTPServerDisconnected("not connected")
            self.file = paced_reader(self.sock, self.pace)
        self.pace.reply()
        return read_reply(self._reply_line, "LMTP ")

    def _reply_line(self) -> tuple[int, bool, bytes]:
        line = self.file.readline(MAX_REPLY_LINE + 1) if self.file else b""
        if not line:
            raise smtplib.SMTPServerDisconnected("connection closed by the LMTP server")
        return reply_line(line, self.transcript, "LMTP ")

    def transaction(self, sender: str, recipient: str, message: IO[bytes]) -> None:
        """One message: MAIL, RCPT and DATA in one write, the three replies, then the
        dot-stuffed message and the one reply for its one recipient."""
        replies = self._envelope(sender, recipient)
        if replies[2][0] == 354 and any(code != 250 for code, _ in replies[:2]):
            self.close()  # a server that takes DATA without a recipient: never send it
        check_reply("MAIL FROM", replies[0], 250, refusal=MessageRefused)
        check_reply("RCPT TO", replies[1], 250)
        check_reply("DATA", replies[2], 354)
        data = DotStuffer(message)
        for piece in data.pieces(upload_piece(self.pace.timeout)):
            self._write(piece)
        self._write(data.end())
        self.transcript.data_summary("send", data.lines, data.octets)
        check_reply("the message", self.getreply(), 250, refusal=MessageRefused)

    def _envelope(self, sender: str, recipient: str) -> list[tuple[int, bytes]]:
        """MAIL, RCPT and DATA in one write, and their replies. `StaleSession` when the
        server had closed the session (a hang-up, or 421) before it read them."""
        commands = [f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>", "DATA"]
        for command in commands:
            self.transcript.sent(command)
        try:
            self._write("".join(c + "\r\n" for c in commands).encode("ascii"))
            first = self.getreply()
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            raise StaleSession(str(exc)) from exc
        if first[0] == 421:
            raise StaleSession(f"421 {reply_text(first[1])}")
        return [first, self.getreply(), self.getreply()]

    def _write(self, data: bytes) -> None:
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        self.sock.sendall(data)


class DotStuffer:
    """A spooled message as DATA carries it: every "." that starts a line doubled
    (across piece boundaries too), then the "." line (after a CRLF when the last line
    has none). `lines` and `octets` count the message as it was, for the transcript."""

    def __init__(self, message: IO[bytes]) -> None:
        self.message = message
        self.tail = b""  # the last two bytes read: does the next piece start a line?
        self.lines = self.octets = 0

    def pieces(self, size: int) -> Iterator[bytes]:
        while block := self.message.read(size):
            # With the previous piece's last two bytes, a CRLF split between pieces
            # still counts; stuffing never changes them, so they are cut off again.
            yield dot_stuff(self.tail + block, at_line_start=not self.tail)[len(self.tail) :]
            self.tail = (self.tail + block)[-2:]
            self.lines += block.count(b"\r\n")
            self.octets += len(block)

    def end(self) -> bytes:
        return b".\r\n" if self.tail in (b"", b"\r\n") else b"\r\n.\r\n"


class _LmtpWriter:
    """Spools the message into an unnamed private file; `finish` delivers it."""

    BUFFER = 256 * 1024  # a message under 256 KiB costs one write(2)

    def __init__(self, lmtp: Lmtp, spool: Path) -> None:
        self.lmtp = lmtp
        # Mode 0600, not inheritable; closed by finish() or abandon(), not a with block.
        self.file = tempfile.TemporaryFile(dir=spool, buffering=self.BUFFER)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self.file.write(data)  # CRLF kept: LMTP carries the message as POP3 gave it

    def finish(self) -> None:
        try:
            self.file.flush()
            self.file.seek(0)
            self.lmtp.deliver(self.file)
        finally:
            self.file.close()

    def abandon(self) -> None:
        self.file.close()  # nothing was sent: the server has nothing of it
