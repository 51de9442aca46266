"""An aiosmtpd server whose only AUTH mechanism is EXTERNAL (RFC 4422 appendix A), for
SMTP logins by TLS client certificate (Postfix cannot: its Dovecot SASL never sees the
client's certificate).

STARTTLS is required; the server context asks for a client certificate and trusts the
ones `client_ca` issued (an untrusted one fails the handshake). `AUTH EXTERNAL =` (no
authorization identity) succeeds as the certificate's common name when one came, and
is 535 otherwise; `logins` records each success, `auth_lines` every AUTH line as sent,
`received` each accepted message's envelope sender and AUTH identity.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from .aiocontroller import ControlledSmtpd
from .certs import Certs
from .ports import HOST, free_port


class ExternalSmtpd(ControlledSmtpd):
    host = HOST

    def __init__(self, certs: Certs, client_ca: Path) -> None:
        context = certs.server_context()
        context.verify_mode = ssl.CERT_OPTIONAL  # ask, and verify what comes
        context.load_verify_locations(cafile=str(client_ca))
        self.port = free_port()
        self.logins: list[str] = []
        self.auth_lines: list[list[str]] = []
        self.received: list[tuple[str, str | None]] = []
        controller = Controller(
            _ExternalHandler(self),
            hostname=HOST,
            port=self.port,
            server_hostname="smtp.example.test",
            tls_context=context,
            require_starttls=True,
            auth_exclude_mechanism=["PLAIN", "LOGIN"],
        )
        super().__init__(controller)


class _ExternalHandler:
    def __init__(self, owner: ExternalSmtpd) -> None:
        self._owner = owner

    async def auth_EXTERNAL(self, server: SMTP, args: list[str]) -> AuthResult:
        self._owner.auth_lines.append(list(args))
        cert: Any = server.transport.get_extra_info("peercert") if server.transport else None
        subject = (cert or {}).get("subject", ())
        names = [value for rdn in subject for key, value in rdn if key == "commonName"]
        if args[1:] != ["="] or not names:
            return AuthResult(success=False, handled=False)
        common_name = str(names[0])
        self._owner.logins.append(common_name)
        return AuthResult(success=True, auth_data=common_name)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        identity = session.auth_data if isinstance(session.auth_data, str) else None
        self._owner.received.append((str(envelope.mail_from), identity))
        return "250 2.0.0 OK"
