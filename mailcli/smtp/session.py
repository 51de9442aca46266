"""SMTP submission: connect, TLS, AUTH, MAIL/RCPT/DATA -> SendResult.

The wire (traced, bounded smtplib) is in `smtp.wire`. The message itself is dot-stuffed
and written in large blocks by `pipeline.send_message`.

Order of a session, and where it stops:
connect -> EHLO (HELO only if EHLO is refused) -> STARTTLS (required when security is
`starttls`: no offer means stop before any credential or mail) -> EHLO -> AUTH (only
when a user is set) -> MAIL FROM -> RCPT TO each -> DATA -> QUIT. With PIPELINING
offered, MAIL, the RCPTs and DATA go out in one write, and QUIT with the last message's
final dot; with CHUNKING too, a small message goes in that write as BDAT
(`smtp.pipeline`). Without PIPELINING, or with `--quit-after mail|rcpt`, each command
waits for its reply. After a completed message the next MAIL needs no RSET.

After each phase (`smtp.phases`: connect, ehlo, tls, auth, mail, rcpt) the session calls one
place, `_reached`: it tells the caller's `on_phase` callback (`check` fills its report
there) and then stops when `quit_after` names the phase (`--quit-after`). `login=False`
opens without AUTH; the caller may then `login()` (`check --login`).

Every path ends the session: QUIT while the conversation is in step (after the last
message, a stop, a refusal, a failed AUTH, no AUTH or STARTTLS offered, the caller's own
error), only closing when it is not (the connection is gone, TLS broke, a protocol
error, an error in the middle of the message body, Ctrl-C).
"""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from mailcli.auth.credential import Credential
from mailcli.auth.sasl import is_external
from mailcli.endpoint import Endpoint
from mailcli.errors import (
    DataError,
    MailcliError,
    RejectedError,
    StoppedEarly,
    TempFailError,
    UnavailableError,
)
from mailcli.network import reply_text, session_timeout, tls_context, trace_tls
from mailcli.smtp.auth import authenticate
from mailcli.smtp.ehloname import EhloName, choose_ehlo_name
from mailcli.smtp.envelope import Outgoing
from mailcli.smtp.phases import SmtpPhase
from mailcli.smtp.pipeline import pipelined_transaction, send_message
from mailcli.smtp.reply import Reply, ReplyCode
from mailcli.smtp.result import SendResult as SendResult
from mailcli.smtp.wire import (
    TracedSMTP,
    close_quietly,
    connect,
    error_from_smtp_reply,
    error_from_smtplib,
    hello,
    quit_quietly,
)
from mailcli.transcript import Transcript

_T = TypeVar("_T")


def submit(
    endpoint: Endpoint,
    outgoing: Outgoing,
    *,
    credential: Credential,
    transcript: Transcript,
    quit_after: SmtpPhase | None = None,
) -> SendResult:
    """Submit one message. Returns the per-recipient result; raises MailcliError for
    failures that stop the session (connection, TLS, AUTH, MAIL, DATA), StoppedEarly
    for `quit_after` phases before MAIL."""
    with SmtpSession(
        endpoint, credential=credential, transcript=transcript, quit_after=quit_after
    ) as session:
        return session.send(outgoing, last=True)


class SmtpSession:
    """One connected, authenticated SMTP session that can carry several messages
    (the spool's `queue run` batches over one connection); with `login=False` not yet
    authenticated (`check`). Leaving the `with` block ends it with QUIT (only a Ctrl-C
    just closes the connection)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        credential: Credential,
        transcript: Transcript,
        quit_after: SmtpPhase | None = None,
        login: bool = True,
        on_phase: Callable[[SmtpPhase, SmtpSession], object] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.credential = credential
        self.transcript = transcript
        self.quit_after = quit_after  # QUIT there, skip the rest
        self.login_wanted = login  # False: open without AUTH (`check` calls login())
        self.on_phase = on_phase  # told of each phase reached (`check` reports them)
        self.connect_seconds = 0.0
        self.messages_sent = 0
        self._smtp: TracedSMTP | None = None
        self._in_transaction = False  # MAIL accepted and no final reply: RSET first
        self.ehlo_name: EhloName | None = None  # decided on entering (smtp.ehloname)

    def __enter__(self) -> SmtpSession:
        endpoint = self.endpoint
        self.ehlo_name = choose_ehlo_name(endpoint.ehlo, endpoint.domain, socket.getfqdn)
        started = time.monotonic()
        self._smtp = connect(endpoint, self.transcript, self.ehlo_name.name)
        self.connect_seconds = time.monotonic() - started
        self._guarded(self._open)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # The caller's own error leaves the conversation in step: QUIT. Ctrl-C: just go.
        self._end(quit=exc_type is None or issubclass(exc_type, Exception))

    @property
    def greeting(self) -> Reply | None:
        return self._connected().greeting

    @property
    def features(self) -> dict[str, str]:
        """EHLO keywords (lower case, as smtplib keeps them) with their parameters."""
        return {name: value.strip() for name, value in self._connected().esmtp_features.items()}

    @property
    def connection(self) -> socket.socket:
        """The socket, a TLS one after STARTTLS or with implicit TLS."""
        return self._connected().connection

    def login(self) -> None:
        """AUTH: the forced mechanism (--auth) or the first offered one of the order
        for TLS or clear; OAuth2 with a BearerSource (`smtp.auth`)."""
        smtp = self._connected()
        self._guarded(lambda: self._authenticate(smtp))

    def send(self, outgoing: Outgoing, *, last: bool = False) -> SendResult:
        """One transaction, pipelined when the server offers PIPELINING (`smtp.pipeline`)
        and `--quit-after` stops no earlier; `last`: no message follows, so QUIT may go
        with the final dot. A completed transaction needs no RSET before the next MAIL;
        one left open (nobody accepted, or a stop after RCPT) gets one."""
        smtp = self._connected()
        if self._in_transaction:
            self._guarded(smtp.rset)
        self._in_transaction = True
        result = self._guarded(lambda: self._transact(smtp, outgoing, last=last))
        self._in_transaction = result.reply is None
        self.messages_sent += 1
        return result

    def _transact(self, smtp: TracedSMTP, outgoing: Outgoing, *, last: bool) -> SendResult:
        options, transcript = _mail_options(smtp, outgoing), self.transcript
        rcpt_options = _rcpt_options(smtp, outgoing, transcript)
        if smtp.has_extn("pipelining") and self.quit_after not in ("mail", "rcpt"):
            result = pipelined_transaction(
                smtp,
                outgoing,
                options,
                transcript,
                self._reached,
                quit=last,
                rcpt_options=rcpt_options,
            )
        else:
            result = _transact(smtp, outgoing, options, rcpt_options, transcript, self._reached)
        if outgoing.dsn:
            result.dsn = "requested" if smtp.has_extn("dsn") else "not offered"
        return result

    def _open(self) -> None:
        smtp = self._connected()
        self._stop_if_reached("connect")
        if self.ehlo_name is not None:
            self.transcript.info(f"EHLO name {self.ehlo_name.name} ({self.ehlo_name.reason})")
        hello(smtp)
        self._stop_if_reached("ehlo")
        if self.endpoint.security == "starttls":
            _starttls(smtp, self.endpoint, self.transcript)
        self._stop_if_reached("tls")
        if self.login_wanted and (self.endpoint.user or is_external(self.endpoint.auth)):
            self._authenticate(smtp)  # EXTERNAL: the certificate's identity, no user needed
        self._stop_if_reached("auth")

    def _authenticate(self, smtp: TracedSMTP) -> None:
        # An OAuth2 token request made for this login waits no longer than the session.
        with session_timeout(self.endpoint.timeout):
            authenticate(smtp, self.endpoint, self.credential)

    def _reached(self, phase: SmtpPhase) -> bool:
        """The one place a phase is reported: the callback first, then True when
        `quit_after` names this phase (the caller stops there)."""
        if self.on_phase is not None:
            self.on_phase(phase, self)
        return phase == self.quit_after

    def _stop_if_reached(self, phase: SmtpPhase) -> None:
        if self._reached(phase):
            raise StoppedEarly(phase)

    def _connected(self) -> TracedSMTP:
        if self._smtp is None:
            raise TempFailError("the SMTP session is closed")
        return self._smtp

    def _guarded(self, action: Callable[[], _T]) -> _T:
        """Run a step of the conversation; on failure end the session and raise the
        translated error."""
        try:
            return action()
        except (StoppedEarly, MailcliError, smtplib.SMTPResponseException) as exc:
            self._end(quit=True)  # a reply (or our own decision): still in step
            if isinstance(exc, smtplib.SMTPResponseException):
                raise error_from_smtplib(exc, self.endpoint) from exc
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._end(quit=False)  # the connection is gone or out of step
            raise error_from_smtplib(exc, self.endpoint) from exc
        except BaseException:
            self._end(quit=False)
            raise

    def _end(self, *, quit: bool) -> None:
        """QUIT when asked and the socket is still open (the wire closes it on a broken
        reply or a lost connection), else close; once."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if quit and smtp.sock is not None:
            quit_quietly(smtp)
        else:
            close_quietly(smtp)


def _starttls(smtp: TracedSMTP, endpoint: Endpoint, transcript: Transcript) -> None:
    """STARTTLS, required: without the offer, stop before any credential or mail."""
    if not smtp.has_extn("starttls"):
        raise UnavailableError(
            f"{endpoint.where} does not offer STARTTLS; nothing was sent",
            hint="use --security tls for implicit TLS, or --security none to send in clear",
        )
    smtp.nagle(True)  # until the first reply inside TLS (TracedSMTP.nagle says why)
    smtp.starttls(context=tls_context(endpoint))  # verifies; resets the EHLO state
    smtp.tls_active = True
    transcript.tls = True
    trace_tls(smtp.connection, transcript)
    hello(smtp)
    smtp.nagle(False)


def _transact(
    smtp: TracedSMTP,
    outgoing: Outgoing,
    options: list[str],
    rcpt_options: Callable[[str], list[str]],
    transcript: Transcript,
    reached: Callable[[SmtpPhase], bool],
) -> SendResult:
    """Lock-step: MAIL, RCPT each, DATA, each waiting for its reply. `reached(phase)`
    True: stop there with what is known (the probe "would these recipients be
    accepted?" sends no DATA). Nobody accepted: the transaction is left open (the
    session resets it before another message; QUIT ends it otherwise)."""
    envelope = outgoing.envelope
    code, message = smtp.mail(envelope.sender, options)
    if code != ReplyCode.COMPLETED:
        raise error_from_smtp_reply("MAIL FROM", Reply(code, reply_text(message)))
    result = SendResult(envelope_from=envelope.sender)
    if reached("mail"):
        return result
    for recipient in envelope.recipients:
        code, message = smtp.rcpt(recipient, rcpt_options(recipient))
        result.record(recipient, Reply(code, reply_text(message)))
    if reached("rcpt") or not result.accepted:
        return result
    result.reply = _send_data(smtp, outgoing, transcript)
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
        options.append("BODY=8BITMIME")  # attachments are base64: ASCII
    if smtp.has_extn("size"):
        _check_size_limit(smtp.esmtp_features["size"], outgoing.size)
        options.append(f"SIZE={outgoing.size}")
    if outgoing.dsn and smtp.has_extn("dsn"):
        options += outgoing.dsn.mail_parameters()
    return options


def _rcpt_options(
    smtp: TracedSMTP, outgoing: Outgoing, transcript: Transcript
) -> Callable[[str], list[str]]:
    """Each RCPT's parameters: RFC 3461's when the message asks and the server offers
    DSN. Not offered: the message goes without them (a preference never costs a
    message); the result says so."""
    dsn = outgoing.dsn
    if not dsn:
        return _no_parameters
    if not smtp.has_extn("dsn"):
        transcript.info("the server does not offer DSN: sending without NOTIFY, RET, ENVID")
        return _no_parameters
    return dsn.rcpt_parameters


def _no_parameters(recipient: str) -> list[str]:
    return []


def _check_size_limit(announced: str, size: int) -> None:
    """RFC 1870: a message over the limit in EHLO's `SIZE n` is refused before MAIL FROM,
    permanently as the server would (552); `SIZE` alone or `SIZE 0` sets no limit."""
    limit = int(announced) if announced.strip().isdigit() else 0
    if limit and size > limit:
        raise RejectedError(
            f"the message is {size} octets, over the server's limit of {limit} octets "
            f"(SIZE {limit} in its EHLO reply); nothing was sent",
            hint="send it smaller (an attachment as a link, or split), or through a server "
            "that takes larger messages",
        )


def _send_data(smtp: TracedSMTP, outgoing: Outgoing, transcript: Transcript) -> Reply:
    """DATA, then the message (`pipeline.send_message`)."""
    code, message = smtp.docmd("DATA")
    if code != ReplyCode.START_INPUT:
        raise error_from_smtp_reply("DATA", Reply(code, reply_text(message)))
    return send_message(smtp, outgoing, transcript, quit=False)
