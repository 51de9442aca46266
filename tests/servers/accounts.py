"""Where and as whom a client logs in to a test server, and the mail the tests put there.

The middle link of the chain the tests use (server -> account -> runner): a server
fixture (``dovecot``, ``postfix``, ``aiosmtpd_factory``) and a ``mailbox`` make an
``Account``; the ``mailcli`` fixture runs commands as that account. The benchmarks build
the same ``Account`` to drive mailcli and its peers, so this module must not import pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from .dovecot import Dovecot
from .ports import HOST
from .postfix import Postfix
from .smtpd import AioSmtpd

Security = Literal["none", "starttls", "tls"]


class Listening(Protocol):
    """Any test server: where it listens."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(frozen=True)
class Account:
    """One login on one server. ``security`` None leaves mailcli's default (STARTTLS);
    ``cafile`` None leaves the system's trust store; ``user`` None sends no AUTH/USER."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    security: Security | None = None
    cafile: Path | None = None

    @classmethod
    def pop3(
        cls, dovecot: Dovecot, user: str, password: str, *, security: Security | None = None
    ) -> Account:
        """A Dovecot user: implicit TLS on the POP3S port, otherwise the POP3 port (STLS)."""
        port = dovecot.pop3s_port if security == "tls" else dovecot.pop3_port
        return cls(dovecot.host, port, user, password, security, dovecot.certs.ca_pem)

    @classmethod
    def submission(
        cls, postfix: Postfix, user: str, password: str, *, security: Security = "starttls"
    ) -> Account:
        """A Dovecot user submitting through Postfix: 587-style STARTTLS, SMTPS, or the
        port 25-style listener (``none``: no AUTH there, so no user)."""
        if security == "none":
            return cls(HOST, postfix.smtp_port, None, password, "none", postfix.certs.ca_pem)
        port = postfix.smtps_port if security == "tls" else postfix.submission_port
        return cls(HOST, port, user, password, security, postfix.certs.ca_pem)

    @classmethod
    def smtpd(
        cls,
        server: AioSmtpd,
        user: str | None = None,
        password: str | None = None,
        *,
        security: Security | None = None,
        cafile: Path | None = None,
    ) -> Account:
        """An aiosmtpd server, which tests start with the TLS and AUTH they need."""
        return cls(server.host, server.port, user, password, security, cafile)

    @classmethod
    def scripted(
        cls,
        server: Listening,
        user: str | None = "u",
        password: str | None = "pw",
        *,
        security: Security = "none",
        cafile: Path | None = None,
    ) -> Account:
        """A scripted or hostile server (``tests/servers/scripted.py``): plain TCP unless
        told otherwise, and a login the script accepts whatever it is."""
        return cls(server.host, server.port, user, password, security, cafile)

    def via(self, port: int) -> Account:
        """The same account reached through another port on the same host (a proxy)."""
        return replace(self, port=port)

    def args(self) -> list[str]:
        """mailcli's connection options for this account (never the password)."""
        args = ["--host", self.host, "--port", str(self.port)]
        if self.security is not None:
            args += ["--security", self.security]
        if self.cafile is not None:
            args += ["--cafile", str(self.cafile)]
        if self.user is not None:
            args += ["--user", self.user]
        return args

    def env(self) -> dict[str, str]:
        """The password the way scripts give it to mailcli: in the environment."""
        return {} if self.password is None else {"MAILCLI_PASSWORD": self.password}


def numbered_message(
    number: int,
    body: bytes | None = None,
    *,
    size: int = 0,
    subject: str | None = None,
    sender: str = "s@example.test",
    date: str | None = None,
) -> bytes:
    """Message ``number`` with LF line ends, as a delivery agent stores it: Subject
    ``n<number>`` and Message-ID ``<n<number>@example.test>`` unless told otherwise; the
    default body has a line starting "From " and one starting with a dot (the cases mbox
    and POP3 must quote); ``size`` adds at least that many bytes in 77-byte lines."""
    headers = f"From: {sender}\nTo: u@example.test\nSubject: {subject or f'n{number}'}\n"
    if date is not None:
        headers += f"Date: {date}\n"
    headers += f"Message-ID: <n{number}@example.test>\n\n"
    if body is None:
        body = f"body of {number}\nFrom the start of a line\n.a dot line\n".encode()
    body += (b"x" * 76 + b"\n") * -(-size // 77)  # whole lines: a line limit is never hit
    return headers.encode() + body
