"""An in-process SMTP server (aiosmtpd) that records everything and can misbehave on demand.

Postfix is the realistic server; this one is for what Postfix will not do on command:
fail MAIL or DATA with a chosen reply, refuse chosen recipients, drop the connection in
the middle of DATA, and report exactly which command lines the client sent (for example
to prove that a client never sent AUTH over an unencrypted connection).

Fault-injection knobs are plain attributes, read at the moment each command arrives, so a
test can change them between two sends:

* ``refuse_rcpt``: addresses (case-insensitive) answered ``550 5.1.1`` at RCPT;
* ``mail_reply``: if set, the reply to every MAIL FROM (e.g. ``"451 4.3.0 try later"``);
* ``data_reply``: if set, the reply after the DATA body instead of 250 (nothing recorded);
* ``drop_during_data``: answer DATA with 354, read one body line, then send 421 and close.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .aiocontroller import ControlledSmtpd
from .ports import HOST, free_port


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the raw bytes of the DATA body."""

    envelope_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()
    login: str | None = None  # the AUTH user of the session, if it authenticated


class AioSmtpd(ControlledSmtpd):
    """An aiosmtpd server on 127.0.0.1 in a background thread, started by ``start()``.

    ``tls_context`` (a server context, e.g. ``Certs.server_context()``) enables STARTTLS,
    or implicit TLS with ``implicit_tls=True``. ``users`` (login -> password) enables AUTH
    PLAIN and LOGIN; with ``auth_require_tls`` (the default, as in aiosmtpd) AUTH is only
    offered over TLS. ``require_starttls`` refuses everything but EHLO/STARTTLS/QUIT
    before TLS. ``smtputf8=False`` stops offering SMTPUTF8 (8BITMIME stays).

    ``received`` lists accepted messages; ``commands`` every line the client sent outside
    DATA bodies, in order, across connections (AUTH continuation lines included).
    """

    host = HOST

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        users: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        smtputf8: bool = True,
        hostname: str = "smtp.example.test",
    ) -> None:
        if (implicit_tls or require_starttls) and tls_context is None:
            raise ValueError("implicit_tls and require_starttls need a tls_context")
        # aiosmtpd 1.4 cannot listen on port 0 (its readiness probe needs the real port).
        self.port = free_port()
        self.users = users
        self.received: list[Received] = []
        self.commands: list[str] = []
        self.refuse_rcpt: set[str] = set()
        self.mail_reply: str | None = None
        self.data_reply: str | None = None
        self.drop_during_data = False
        controller = _RecordingController(
            self,
            _Handler(self),
            hostname=HOST,
            port=self.port,
            ssl_context=tls_context if implicit_tls else None,
            server_hostname=hostname,
            tls_context=None if implicit_tls else tls_context,
            require_starttls=require_starttls,
            authenticator=self._authenticate,
            # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS connection is TLS too.
            auth_require_tls=auth_require_tls and not implicit_tls,
            enable_SMTPUTF8=smtputf8,
            # Without users AUTH is neither offered (see handle_EHLO) nor accepted (504).
            auth_exclude_mechanism=[] if users else ["PLAIN", "LOGIN"],
        )
        super().__init__(controller)

    def saw_command(self, verb: str) -> bool:
        """True if any recorded command line starts with ``verb`` (case-insensitive)."""
        verb = verb.upper()
        return any(line.upper().split(" ", 1)[0] == verb for line in self.commands)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Check PLAIN/LOGIN credentials against ``users``."""
        if isinstance(data, LoginPassword) and self.users:
            login = data.login.decode("utf-8", "replace")
            if self.users.get(login) == data.password.decode("utf-8", "replace"):
                return AuthResult(success=True, auth_data=data)
        # handled=False makes aiosmtpd send the 535 itself; with handled=True (the default)
        # nobody answers and the client hangs.
        return AuthResult(success=False, handled=False)


class _Handler:
    """aiosmtpd hooks applying the owner's fault-injection settings and recording mail."""

    def __init__(self, owner: AioSmtpd) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # aiosmtpd lists "AUTH" (even with no mechanism) unless a hook removes it.
        session.host_name = hostname  # the hook replaces aiosmtpd's own bookkeeping
        if self.owner.users is None:
            return [line for line in responses if not line[4:].startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.owner.mail_reply is not None:
            return self.owner.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in {refused.lower() for refused in self.owner.refuse_rcpt}:
            return f"550 5.1.1 <{address}>: recipient refused by test server"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.owner.data_reply is not None:
            return self.owner.data_reply
        auth = session.auth_data
        self.owner.received.append(
            Received(
                envelope_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                mail_options=tuple(envelope.mail_options),
                login=auth.login.decode("utf-8", "replace")
                if isinstance(auth, LoginPassword)
                else None,
            )
        )
        return "250 2.0.0 OK: queued"


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, plus a transcript of client lines and the mid-DATA drop.

    Lines are captured in ``data_received``, which asyncio calls with the decrypted bytes
    in every mode (plain, after STARTTLS, implicit TLS), so even commands that aiosmtpd
    refuses before dispatching them (e.g. AUTH before STARTTLS) are recorded.
    """

    def __init__(self, handler: _Handler, owner: AioSmtpd, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner
        self._partial = b""
        self._in_data_body = False

    def data_received(self, data: bytes) -> None:
        self._record(data)
        super().data_received(data)

    async def push(self, status: AnyStr) -> None:
        # The body starts right after our 354; a lone "." line ends it (see _record).
        if (status if isinstance(status, bytes) else status.encode()).startswith(b"354"):
            self._in_data_body = True
        await super().push(status)

    def _record(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if self._in_data_body:
                self._in_data_body = line != b"."
            else:
                self._owner.commands.append(line.decode("utf-8", "replace"))

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        if not (self._owner.drop_during_data and envelope is not None and envelope.rcpt_tos):
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # Wait until the client really is sending the body, then hang up on it.
        await self._reader.readuntil(b"\r\n")
        await self.push("421 4.4.2 test server closing the connection during DATA")
        if self.transport is not None:
            self.transport.close()


class _QuietSession(Session):
    """aiosmtpd 1.4 itself sets the deprecated ``login_data`` on every successful AUTH and
    then logs a deprecation warning; a plain attribute keeps test logs free of that noise."""

    login_data: Any = None


class _RecordingController(Controller):
    """A Controller whose connections use _RecordingSMTP."""

    def __init__(self, owner: AioSmtpd, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _RecordingSMTP(self.handler, self._owner, **self.SMTP_kwargs)
