"""An SMTP dialogue over a RawConnection, for the audit's SMTP probes.

Probes speak SMTP by hand (they send what well-behaved clients never send), so this is
deliberately small: the greeting, EHLO and its features, STARTTLS, one command and its
reply, QUIT. A server that answers out of turn or not at all raises `ProbeError`, which
the audit reports as `skipped` with the reason.
"""

from __future__ import annotations

import contextlib
import ipaddress

from mailcli.check.findings import AuditTarget
from mailcli.check.raw import RawConnection
from mailcli.check.tls_probes import unverified_context

Reply = tuple[int, list[bytes]]
EHLO_NAME = "mailcli-audit.invalid"


class ProbeError(Exception):
    """The conversation did not go the way the probe needs: nothing to grade."""


class SmtpDialog:
    """`with SmtpDialog.open(target) as smtp:` greeted, EHLO done, and inside STARTTLS
    when the endpoint says `starttls` (unless `starttls=False`)."""

    def __init__(self, conn: RawConnection) -> None:
        self.conn = conn
        self.features: dict[str, str] = {}

    @classmethod
    def open(cls, target: AuditTarget, *, starttls: bool = True) -> SmtpDialog:
        # Probes never send a real credential, so they do not need a verified certificate:
        # the certificate is judged by `check` itself and the `certificate` probe.
        conn = RawConnection.open(target, context=unverified_context())
        dialog = cls(conn)
        try:
            if dialog.reply()[0] != 220:
                raise ProbeError("the server did not greet with 220")
            dialog.ehlo()
            if starttls and target.endpoint.security == "starttls":
                dialog.starttls(target)
        except BaseException:
            conn.close()
            raise
        return dialog

    def __enter__(self) -> SmtpDialog:
        return self

    def __exit__(self, *_: object) -> None:
        self.conn.close()

    @property
    def evidence(self) -> tuple[str, ...]:
        return tuple(self.conn.evidence)

    def reply(self) -> Reply:
        answer = self.conn.read_smtp_reply()
        if answer is None:
            raise ProbeError("no SMTP reply within the time bound")
        return answer

    def command(self, line: str) -> Reply:
        self.conn.send(line.encode("utf-8") + b"\r\n")
        return self.reply()

    def ehlo(self) -> None:
        code, lines = self.command(f"EHLO {EHLO_NAME}")
        if code != 250:
            raise ProbeError(f"EHLO refused: {one_line(lines)}")
        self.features = {}
        for line in lines[1:]:
            keyword, _, argument = line[4:].decode("ascii", "replace").partition(" ")
            self.features[keyword.lower()] = argument.strip()

    def starttls(self, target: AuditTarget) -> None:
        if "starttls" not in self.features:
            raise ProbeError("the server does not offer STARTTLS")
        code, lines = self.command("STARTTLS")
        if code != 220:
            raise ProbeError(f"STARTTLS refused: {one_line(lines)}")
        self.conn.start_tls(unverified_context(), target.endpoint.host)
        self.ehlo()

    def quit(self) -> None:
        """QUIT and close; what the server says to it no longer matters."""
        with contextlib.suppress(OSError):
            self.conn.send(b"QUIT\r\n")
            self.conn.read_smtp_reply()
        self.conn.close()


def one_line(lines: list[bytes]) -> str:
    """A reply's lines on one line, for a summary or an error message."""
    return " / ".join(line.decode("utf-8", "replace") for line in lines)


def inside_reason(conn: RawConnection) -> str | None:
    """Why the tester may be inside the server's trusted networks (its `mynetworks`), from
    where the connection runs: over loopback, or to an address of this very host."""
    try:
        peer = conn.sock.getpeername()[0]
        local = conn.sock.getsockname()[0]
    except OSError:
        return None
    if ipaddress.ip_address(peer).is_loopback:
        return f"the server is reached over loopback ({local} -> {peer})"
    if peer == local:
        return f"the server runs on this host ({peer})"
    return None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]
