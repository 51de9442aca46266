"""SMTP submission on smtplib: connect, TLS, AUTH, MAIL/RCPT/DATA -> SendResult.

smtplib does the conversation; two of its methods are replaced so that every line goes
through the transcript (masked) and replies are read with bounded memory: a reply line
over 8192 bytes, a malformed status line or an endless multi-line reply is a protocol
error (76). smtplib's own `set_debuglevel` prints AUTH payloads in clear, so it is never
used. The message itself is dot-stuffed and written in large blocks by `_send_data`.

Order of a session, and where it stops:
connect -> EHLO (HELO only if EHLO is refused) -> STARTTLS (required when security is
`starttls`: no offer means stop before any credential or mail) -> EHLO -> AUTH (only
when a user is set) -> MAIL FROM -> RCPT TO each -> DATA -> QUIT.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from mailcli.endpoint import Endpoint
from mailcli.envelope import Outgoing
from mailcli.errors import (
    DataError,
    ExitStatus,
    MailcliError,
    PermissionDeniedError,
    ProtocolError,
    RejectedError,
    TempFailError,
    UnavailableError,
)
from mailcli.network import tls_context, trace_tls, translate
from mailcli.transcript import Transcript

MAX_REPLY_LINE = 8192  # what smtplib allows; RFC 5321 says 512
MAX_REPLY_LINES = 1000
DATA_CHUNK = 256 * 1024
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
# Strongest first. XOAUTH2 is used only when asked for (--auth xoauth2).
AUTH_PREFERENCE = ("CRAM-MD5", "PLAIN", "LOGIN")


class Reply(NamedTuple):
    """One SMTP reply: the code and the text (lines joined by newlines)."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


@dataclass
class SendResult:
    """Per recipient accepted or refused, and the final reply to DATA (None: not sent)."""

    envelope_from: str
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, Reply] = field(default_factory=dict)
    reply: Reply | None = None

    @property
    def exit_status(self) -> ExitStatus:
        if any(reply.temporary for reply in self.refused.values()):
            return ExitStatus.TEMPFAIL
        return ExitStatus.NOUSER if self.refused else ExitStatus.OK

    def as_json(self) -> dict[str, Any]:
        refused = {a: {"code": r.code, "message": r.message} for a, r in self.refused.items()}
        return {
            "envelope_from": self.envelope_from,
            "accepted": self.accepted,
            "refused": refused,
            "reply": str(self.reply) if self.reply else None,
        }


PasswordSource = Callable[[], str]
_T = TypeVar("_T")


class TracedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose lines pass through a Transcript and whose replies are bounded."""

    transcript: Transcript = Transcript()

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        self.transcript.info(f"connecting to {host}:{port}")
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        # Nagle against delayed ACK stalls small writes ~40 ms: send each line at once.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock  # type: ignore[no-any-return]

    def send(self, s: Any) -> None:
        self.transcript.sent(s)
        super().send(s)

    @property
    def connection(self) -> socket.socket:
        """The connected socket (plain or TLS); smtplib types it as optional."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        return self.sock

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None:
            self.file = self.connection.makefile("rb")
        lines: list[bytes] = []
        while True:
            code, more, text = self._read_reply_line()
            lines.append(text)
            if not more:
                return code, b"\n".join(lines)
            if len(lines) >= MAX_REPLY_LINES:
                self.close()
                raise ProtocolError(f"multi-line reply longer than {MAX_REPLY_LINES} lines")

    def _read_reply_line(self) -> tuple[int, bool, bytes]:
        try:
            line = self.file.readline(MAX_REPLY_LINE + 1) if self.file else b""
        except TimeoutError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"connection lost: {exc}") from exc
        if not line:
            self.close()
            raise smtplib.SMTPServerDisconnected("connection closed by the server")
        if len(line) > MAX_REPLY_LINE or not line.endswith(b"\n"):
            self.close()
            raise ProtocolError(f"reply line longer than {MAX_REPLY_LINE} bytes")
        text = line.rstrip(b"\r\n")
        self.transcript.received(text)
        if not (text[:3].isdigit() and text[3:4] in (b"", b" ", b"-")):
            self.close()
            raise ProtocolError(f"malformed reply line: {text[:80]!r}")
        return int(text[:3]), text[3:4] == b"-", text[4:]


class TracedSMTPSSL(TracedSMTP, smtplib.SMTP_SSL):
    """Implicit TLS (port 465) with the same tracing."""


def submit(
    endpoint: Endpoint,
    outgoing: Outgoing,
    *,
    password: PasswordSource,
    transcript: Transcript,
) -> SendResult:
    """Submit one message. Returns the per-recipient result; raises MailcliError for
    failures that stop the session (connection, TLS, AUTH, MAIL, DATA)."""
    with SmtpSession(endpoint, password=password, transcript=transcript) as session:
        return session.send(outgoing)


class SmtpSession:
    """One connected, authenticated SMTP session that can carry several messages
    (the spool's `queue run` batches over one connection). Leaving the `with` block
    sends QUIT, or just closes the connection after an error."""

    def __init__(
        self, endpoint: Endpoint, *, password: PasswordSource, transcript: Transcript
    ) -> None:
        self.endpoint = endpoint
        self.password = password
        self.transcript = transcript
        self.messages_sent = 0
        self._smtp: TracedSMTP | None = None

    def __enter__(self) -> SmtpSession:
        smtp = _connect(self.endpoint, self.transcript)
        self._smtp = smtp
        self._guarded(lambda: self._open(smtp))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._smtp is not None:
            (_close if exc_type else _quit)(self._smtp)
            self._smtp = None

    def send(self, outgoing: Outgoing) -> SendResult:
        smtp = self._smtp
        if smtp is None:
            raise smtplib.SMTPServerDisconnected("session is closed")
        if self.messages_sent:
            self._guarded(smtp.rset)  # a clean transaction for each message
        result = self._guarded(lambda: _transact(smtp, outgoing, self.transcript))
        self.messages_sent += 1
        return result

    def _open(self, smtp: TracedSMTP) -> None:
        _handshake(smtp, self.endpoint, self.transcript)
        if self.endpoint.user:
            _authenticate(smtp, self.endpoint, self.password)

    def _guarded(self, action: Callable[[], _T]) -> _T:
        """Run an smtplib step; on any failure close the connection, translated."""
        try:
            return action()
        except MailcliError:
            self._abandon()
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._abandon()
            raise _translate_smtp(exc, self.endpoint) from exc

    def _abandon(self) -> None:
        if self._smtp is not None:
            _close(self._smtp)
            self._smtp = None


def _connect(endpoint: Endpoint, transcript: Transcript) -> TracedSMTP:
    local_name = socket.gethostname()  # getfqdn() may wait on DNS for seconds
    smtp: TracedSMTP
    if endpoint.security == "tls":
        smtp = TracedSMTPSSL(
            local_hostname=local_name, timeout=endpoint.timeout, context=tls_context(endpoint)
        )
    else:
        smtp = TracedSMTP(local_hostname=local_name, timeout=endpoint.timeout)
    smtp.transcript = transcript
    # smtplib takes the TLS server name (SNI, host name check) from _host, which only its
    # constructor sets; we connect separately to trace and translate the connect itself.
    smtp._host = endpoint.host  # type: ignore[attr-defined]
    try:
        if endpoint.security == "tls":
            transcript.tls = True  # everything after the TCP connect is inside TLS
        code, greeting = smtp.connect(endpoint.host, endpoint.port)
    except (smtplib.SMTPException, OSError) as exc:
        _close(smtp)
        raise _translate_smtp(exc, endpoint) from exc
    if code != 220:
        _close(smtp)
        raise _reply_error("the connection", Reply(code, _text(greeting)))
    if endpoint.security == "tls":
        _describe_tls(smtp, transcript)
    return smtp


def _handshake(smtp: TracedSMTP, endpoint: Endpoint, transcript: Transcript) -> None:
    _hello(smtp)
    if endpoint.security != "starttls":
        return
    if not smtp.has_extn("starttls"):
        raise UnavailableError(
            f"{endpoint.host}:{endpoint.port} does not offer STARTTLS; nothing was sent",
            hint="use --security tls for implicit TLS, or --security none to send in clear",
        )
    smtp.starttls(context=tls_context(endpoint))  # verifies; resets the EHLO state
    transcript.tls = True
    _describe_tls(smtp, transcript)
    _hello(smtp)


def _hello(smtp: TracedSMTP) -> None:
    code, message = smtp.ehlo()
    if code == 250:
        return
    code, message = smtp.helo()  # only when EHLO is refused: an old or minimal server
    if code != 250:
        raise _reply_error("HELO", Reply(code, message.decode(errors="replace")))


def _describe_tls(smtp: TracedSMTP, transcript: Transcript) -> None:
    trace_tls(smtp.connection, transcript)


def _authenticate(smtp: TracedSMTP, endpoint: Endpoint, password: PasswordSource) -> None:
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = choose_mechanism(offered, endpoint.auth)
    secret = password()
    smtp.user, smtp.password = endpoint.user or "", secret
    try:
        if mechanism == "XOAUTH2":
            authobject: Any = _xoauth2(endpoint.user or "", secret)
            smtp.auth("XOAUTH2", authobject, initial_response_ok=True)
        else:
            method = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
            smtp.auth(mechanism, method, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        reply = Reply(exc.smtp_code, _text(exc.smtp_error))
        if reply.temporary:
            raise TempFailError(f"authentication failed temporarily: {reply}") from None
        raise PermissionDeniedError(
            f"authentication as {endpoint.user!r} failed: {reply}",
            hint="check the user and the password source (`mailcli password where`)",
        ) from None


def choose_mechanism(offered: list[str], forced: str | None) -> str:
    """The forced mechanism when offered, else the strongest offered one we speak."""
    if not offered:
        raise UnavailableError(
            "the server offers no AUTH",
            hint="drop --user (and the account's user) to send without authentication",
        )
    if forced:
        mechanism = forced.upper()
        if mechanism not in offered:
            raise UnavailableError(
                f"the server does not offer AUTH {mechanism}; it offers {' '.join(offered)}"
            )
        if mechanism not in (*AUTH_PREFERENCE, "XOAUTH2"):
            raise UnavailableError(f"mailcli does not speak AUTH {mechanism}")
        return mechanism
    for mechanism in AUTH_PREFERENCE:
        if mechanism in offered:
            return mechanism
    raise UnavailableError(f"no supported AUTH mechanism among {' '.join(offered)}")


def _xoauth2(user: str, token: str) -> Callable[[bytes | None], str]:
    def respond(challenge: bytes | None = None) -> str:
        # After an error challenge the client must answer with an empty line.
        return "" if challenge is not None else f"user={user}\x01auth=Bearer {token}\x01\x01"

    return respond


def _transact(smtp: TracedSMTP, outgoing: Outgoing, transcript: Transcript) -> SendResult:
    envelope = outgoing.envelope
    options = _mail_options(smtp, outgoing)
    code, message = smtp.mail(envelope.sender, options)
    if code != 250:
        raise _reply_error("MAIL FROM", Reply(code, _text(message)))
    result = SendResult(envelope_from=envelope.sender)
    for recipient in envelope.recipients:
        code, message = smtp.rcpt(recipient)
        if code in (250, 251):
            result.accepted.append(recipient)
        else:
            result.refused[recipient] = Reply(code, _text(message))
    if not result.accepted:
        smtp.rset()
        return result
    result.reply = _send_data(smtp, outgoing.data, transcript)
    return result


def _mail_options(smtp: TracedSMTP, outgoing: Outgoing) -> list[str]:
    options = []
    if outgoing.smtputf8:
        if not smtp.has_extn("smtputf8"):
            raise DataError(
                "an address is not ASCII and the server does not offer SMTPUTF8",
                hint="use an ASCII address (a non-ASCII display name is fine)",
            )
        options.append("SMTPUTF8")
    if not outgoing.data.isascii() and smtp.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if smtp.has_extn("size"):
        options.append(f"SIZE={len(outgoing.data)}")
    return options


def _send_data(smtp: TracedSMTP, data: bytes, transcript: Transcript) -> Reply:
    code, message = smtp.docmd("DATA")
    if code != 354:
        raise _reply_error("DATA", Reply(code, _text(message)))
    stuffed = _LEADING_DOT.sub(b"..", data)
    if transcript.show_data:
        for line in stuffed.split(b"\r\n")[:-1]:
            transcript.data_line("send", line)
    else:
        transcript.data_summary("send", data.count(b"\n"), len(data))
    view = memoryview(stuffed)
    for offset in range(0, len(view), DATA_CHUNK):
        smtp.connection.sendall(view[offset : offset + DATA_CHUNK])
    transcript.sent(b".")
    smtp.connection.sendall(b".\r\n")
    reply = Reply(*_decoded(smtp.getreply()))
    if reply.code != 250:
        raise _reply_error("the message", reply)
    return reply


def _reply_error(stage: str, reply: Reply) -> MailcliError:
    """4xx: try later (75); 5.6.x on the message: malformed (65); other 5xx: refused (69)."""
    if reply.temporary:
        return TempFailError(f"{stage} deferred by the server: {reply}")
    if stage == "the message" and reply.message.startswith("5.6."):
        return DataError(f"the server rejected the message as malformed: {reply}")
    if stage in ("MAIL FROM", "the message"):
        return RejectedError(f"{stage} refused by the server: {reply}")
    return UnavailableError(f"{stage} refused by the server: {reply}")


def _translate_smtp(exc: BaseException, endpoint: Endpoint) -> MailcliError:
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TempFailError(f"{endpoint.host}:{endpoint.port} closed the connection: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):  # e.g. a 421 or 554 greeting
        return _reply_error("the connection", Reply(exc.smtp_code, _text(exc.smtp_error)))
    if isinstance(exc, smtplib.SMTPException):
        return ProtocolError(f"SMTP error from {endpoint.host}: {exc}")
    return translate(exc, endpoint)


def _text(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


def _decoded(reply: tuple[int, bytes]) -> tuple[int, str]:
    return reply[0], _text(reply[1])


def _quit(smtp: TracedSMTP) -> None:
    """The message is already accepted: a failing QUIT changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        _close(smtp)


def _close(smtp: TracedSMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()
