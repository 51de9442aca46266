"""SMTP on the wire: smtplib with every line through the transcript, bounded replies.

smtplib does the conversation; two of its methods are replaced so that every line goes
through the transcript (masked) and replies are read with bounded memory: a reply line
over 8192 bytes, a malformed status line or an endless multi-line reply is a protocol
error (76). smtplib's own `set_debuglevel` prints AUTH payloads in clear: never used.

Replies are read under the connection's `network.Pace`: each whole reply (every line of
a multi-line one) within the timeout, however the server dribbles it (75, "server too
slow"); the message body is written in pieces each of which must go within the timeout
(`network.upload_piece`).
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
from typing import Any

from mailcli.endpoint import Endpoint
from mailcli.errors import (
    DataError,
    MailcliError,
    ProtocolError,
    RejectedError,
    TempFailError,
    UnavailableError,
)
from mailcli.network import (
    MAX_REPLY_LINE,
    Pace,
    error_from_network,
    paced_reader,
    read_reply,
    reply_line,
    reply_text,
    tls_context,
    trace_tls,
)
from mailcli.smtp.reply import Reply, ReplyCode
from mailcli.transcript import Transcript
from mailcli.transport.connect import await_greeting, open_connection


class TracedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose lines pass through a Transcript and whose replies are bounded."""

    transcript: Transcript = Transcript()
    greeting: Reply | None = None
    tls_active = False  # implicit TLS or after STARTTLS: decides the AUTH order
    pace: Pace  # set by connect(), from the endpoint's timeout
    endpoint: Endpoint  # set by connect(): where and how _get_socket connects

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # mailcli.connect, not smtplib's create_connection: IPv6 literals, -4/-6, the
        # source address and the proxy are the same for every command there.
        sock = open_connection(self.endpoint, self.transcript, timeout)
        if isinstance(self, smtplib.SMTP_SSL):
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.endpoint.host)
            except BaseException:
                sock.close()
                raise
        # Nagle against delayed ACK stalls small writes ~40 ms: send each line at once
        # (DATA writes the body, then the final dot, then waits). See also nagle().
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self, smtplib.SMTP_SSL) and hasattr(socket, "TCP_QUICKACK"):
            # Implicit TLS: a TLS 1.3 server (Postfix) writes its session tickets after
            # the handshake, then the 220 greeting, which its Nagle held back until our
            # delayed ACK of the tickets: ~40 ms on every connection. ACK at once (Linux).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        if not isinstance(self, smtplib.SMTP_SSL):  # a wrong TLS mode shows before 220
            try:
                await_greeting(sock, self.endpoint, timeout, self.transcript)
            except BaseException:
                sock.close()
                raise
        return sock

    def send(self, s: Any) -> None:
        self.transcript.sent(s)
        super().send(s)

    def nagle(self, on: bool) -> None:
        """Nagle's algorithm on (TCP_NODELAY off) or off. On from STARTTLS until the
        first reply inside TLS: a TLS 1.3 server (Postfix) writes its session tickets
        after the handshake, and with Nagle off here its reply to the EHLO that follows
        waited ~40 ms for our delayed ACK on every connection."""
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(not on))

    @property
    def connection(self) -> socket.socket:
        """The connected socket (plain or TLS); smtplib types it as optional."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        return self.sock

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None:  # after connect and after STARTTLS (smtplib resets it)
            self.file = paced_reader(self.connection, self.pace)
        self.pace.reply()
        try:
            return read_reply(self._read_reply_line)
        except ProtocolError:
            self.close()
            raise

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
        try:
            return reply_line(line, self.transcript)
        except ProtocolError:
            self.close()
            raise


class TracedSMTPSSL(TracedSMTP, smtplib.SMTP_SSL):
    """Implicit TLS (port 465) with the same tracing."""


def connect(endpoint: Endpoint, transcript: Transcript, local_name: str) -> TracedSMTP:
    """Connected and greeted; `local_name` is what EHLO will give (`smtp.ehloname`)."""
    smtp: TracedSMTP
    if endpoint.security == "tls":
        smtp = TracedSMTPSSL(
            local_hostname=local_name, timeout=endpoint.timeout, context=tls_context(endpoint)
        )
    else:
        smtp = TracedSMTP(local_hostname=local_name, timeout=endpoint.timeout)
    smtp.transcript = transcript
    smtp.pace = Pace(endpoint.timeout)
    smtp.endpoint = endpoint
    # smtplib takes the TLS server name (SNI, host name check) from _host, which only its
    # constructor sets; we connect separately to trace and translate the connect itself.
    smtp._host = endpoint.host  # type: ignore[attr-defined]
    try:
        if endpoint.security == "tls":
            transcript.tls = True  # everything after the TCP connect is inside TLS
        code, greeting = smtp.connect(endpoint.host, endpoint.port)
    except (smtplib.SMTPException, OSError) as exc:
        close_quietly(smtp)
        raise error_from_smtplib(exc, endpoint) from exc
    if code != ReplyCode.READY:
        close_quietly(smtp)
        raise error_from_smtp_reply("the connection", Reply(code, reply_text(greeting)))
    smtp.greeting = Reply(code, reply_text(greeting))
    if endpoint.security == "tls":
        smtp.tls_active = True
        trace_tls(smtp.connection, transcript)
    return smtp


def hello(smtp: TracedSMTP) -> None:
    code, message = smtp.ehlo()
    if code == ReplyCode.COMPLETED:
        return
    code, message = smtp.helo()  # only when EHLO is refused: an old or minimal server
    if code != ReplyCode.COMPLETED:
        raise error_from_smtp_reply("HELO", Reply(code, message.decode(errors="replace")))


def error_from_smtp_reply(stage: str, reply: Reply) -> MailcliError:
    """A refusing reply -> its MailcliError. 4xx: try later (75); 5.6.x on the message:
    malformed (65); other 5xx: refused (69)."""
    if reply.temporary:
        return TempFailError(f"{stage} deferred by the server: {reply}")
    if stage == "the message" and reply.message.startswith("5.6."):
        return DataError(f"the server rejected the message as malformed: {reply}")
    if stage in ("MAIL FROM", "the message"):
        return RejectedError(
            f"{stage} refused by the server: {reply}",
            code=reply.code,
            enhanced_status=reply.enhanced_status,
            text=reply.text,
        )
    return UnavailableError(f"{stage} refused by the server: {reply}")


def error_from_smtplib(exc: BaseException, endpoint: Endpoint) -> MailcliError:
    """An smtplib exception (or a network one, `network`'s to map) -> its MailcliError."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TempFailError(f"{endpoint.where} closed the connection: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):  # e.g. a 421 or 554 greeting
        return error_from_smtp_reply(
            "the connection", Reply(exc.smtp_code, reply_text(exc.smtp_error))
        )
    if isinstance(exc, smtplib.SMTPException):
        return ProtocolError(f"SMTP error from {endpoint.host}: {exc}")
    return error_from_network(exc, endpoint)


def decoded(reply: tuple[int, bytes]) -> tuple[int, str]:
    return reply[0], reply_text(reply[1])


def quit_quietly(smtp: TracedSMTP) -> None:
    """The message is already accepted: a failing QUIT changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        close_quietly(smtp)


def close_quietly(smtp: TracedSMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()
