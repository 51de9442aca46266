"""Relay failover: one message offered to an account's SMTP server, then to the servers
of its `fallback` accounts, in order, while each fails temporarily before anyone has
accepted the message.

A relay is one account's server (its own host, port, security, user and credential);
`RelayChain` holds the relays of one account, first its own, and opens each session on
first use. `RelayChain.send` offers a message to the first relay still up and moves on
only when the whole transaction failed temporarily before the message was accepted
(`moves_on`):
- while opening the session: a refused, unreachable or timed-out connection, an
  unresolvable host, a TLS handshake or certificate failure, a 4xx (421 included) to
  the greeting, EHLO, STARTTLS or AUTH, a connection dropped meanwhile;
- in the transaction: a 4xx reply to MAIL, DATA or the message (the final dot or
  chunk), a 421 at any point, or a 4xx to every RCPT with none accepted.
Everything else is final and the error is raised as it is: any 5xx (the message, a
recipient, the greeting or AUTH refused), a recipient accepted (a partial acceptance is
the result: the others are never offered elsewhere, no duplicates), bad input, a
missing or refused credential (77/78: a setting to fix, which moving on would hide; the
sendmail queue keeps the message), and a connection lost or timing out once the
transaction began (the server may have taken the message; SMTP cannot ask it).

The envelope and message are the same on every relay: a fallback account's `from` does
not rewrite them. Fallbacks are final: a fallback's own `fallback` list is not followed,
so a cycle (a -> b -> a) is harmless. A relay whose failure ended its session (every
failure that moves on but the 4xx to every RCPT) stays down for the rest of the chain's
life (a `queue run`), so the next message starts at the first relay still up; one that
refused a message's recipients temporarily keeps its session for the next message.

The transcript of the relay tried next says why: `== trying fallback ACCOUNT
(HOST:PORT) after: REASON`. When every relay fails temporarily, a chain of more than one
raises `TempFailError` naming each relay and its reason; a chain of one raises its error
unchanged. `Handover` says which relay took the message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from mailcli.errors import (
    HostNotFoundError,
    MailcliError,
    PermissionDeniedError,
    RejectedError,
    TempFailError,
    UnavailableError,
)
from mailcli.smtp.envelope import Outgoing
from mailcli.smtp.result import SendResult
from mailcli.smtp.session import SmtpSession


class Relay(NamedTuple):
    """One account's SMTP server: `open()` builds its session, not yet connected."""

    account: str | None  # None: the server given by options alone
    open: Callable[[], SmtpSession]


class RelayUsed(NamedTuple):
    """Which relay answered for a message: for the transcript, `--json` and the log."""

    account: str | None  # the relay's account
    server: str  # HOST:PORT
    fallback: bool  # a fallback account's server, not the first one


class Handover(NamedTuple):
    """The result of the relay that took (or finally answered for) the message."""

    result: SendResult
    relay: RelayUsed


class RelayChain:
    """The relays of one account, in order; one lazily opened session per relay. Use it
    as a context manager: leaving it ends every open session."""

    def __init__(self, relays: Sequence[Relay]) -> None:
        if not relays:
            raise ValueError("a relay chain needs at least one relay")
        self.relays = list(relays)
        self._sessions: dict[int, SmtpSession] = {}
        self._down: dict[int, MailcliError] = {}  # relay -> what brought it down

    def __enter__(self) -> RelayChain:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.__exit__(exc_type)

    def send(self, outgoing: Outgoing, *, last: bool = False) -> Handover:
        """Offer `outgoing` to each relay still up, in order, until one answers finally;
        `last`: no message follows on these sessions (QUIT may go with the final dot)."""
        after: str | None = None  # why the relay before this one could not take it
        for position in self._up():
            try:
                result = self._offer(position, outgoing, last, after)
            except _MovedOn as moved:
                after = moved.error.message
                continue
            after = refused_temporarily(result)
            if after is None or position == max(self._up()):
                return self._handover(position, result)
        raise self._exhausted()

    def _offer(
        self, position: int, outgoing: Outgoing, last: bool, after: str | None
    ) -> SendResult:
        """One relay's transaction, its session opened first when needed; a failure that
        moves on marks the relay down and raises `_MovedOn`."""
        session = self._sessions.get(position)
        opened = session is not None
        try:
            if session is None:
                session = self._open(position, after)
                opened = True
            return session.send(outgoing, last=last)
        except MailcliError as exc:
            self._sessions.pop(position, None)  # the session ended with the error
            if not moves_on(exc, opened=opened):
                raise
            self._down[position] = exc
            raise _MovedOn(exc) from exc

    def _open(self, position: int, after: str | None) -> SmtpSession:
        """Connect relay `position`; a fallback's transcript first says why it is tried."""
        session = self.relays[position].open()
        if after is not None:
            session.transcript.info(
                f"trying fallback {self._name(position)} ({_where(session)}) after: {after}"
            )
        session.__enter__()
        self._sessions[position] = session
        return session

    def _up(self) -> list[int]:
        return [position for position in range(len(self.relays)) if position not in self._down]

    def _name(self, position: int) -> str:
        account = self.relays[position].account
        return account if account is not None else "the server given"

    def _handover(self, position: int, result: SendResult) -> Handover:
        server = _where(self._sessions[position])
        return Handover(result, RelayUsed(self.relays[position].account, server, position > 0))

    def _exhausted(self) -> MailcliError:
        """Every relay is down: the one relay's own error, else a 75 naming each."""
        if len(self.relays) == 1:
            return self._down[0]
        failures = (f"{self._name(p)}: {error.message}" for p, error in self._down.items())
        return TempFailError(
            "no relay took the message: " + "; ".join(failures),
            hint="nothing was sent; the servers may take it later",
        )


class _MovedOn(Exception):
    """A relay failed in a way that lets the next one try (`moves_on`)."""

    def __init__(self, error: MailcliError) -> None:
        super().__init__(error.message)
        self.error = error


def _where(session: SmtpSession) -> str:
    return session.endpoint.where


def refused_temporarily(result: SendResult) -> str | None:
    """Why the transaction failed temporarily as a whole (a 4xx to every RCPT, none
    accepted, nothing sent), or None: the result is final."""
    if result.accepted or result.reply is not None or not result.refused:
        return None
    if not all(reply.temporary for reply in result.refused.values()):
        return None
    return "; ".join(f"{address}: {reply}" for address, reply in result.refused.items())


def moves_on(error: MailcliError, *, opened: bool) -> bool:
    """Whether `error` leaves the message untaken by anyone and another server may take
    it now (see the module's docstring). `opened`: the session was open, the error came
    from the transaction."""
    if isinstance(error, RejectedError):
        return False
    cause = error.__cause__
    if opened:
        # A reply (raised as is, or from smtplib's reply exception) proves the server
        # answered and took nothing; a lost connection proves nothing.
        return isinstance(error, TempFailError) and (cause is None or _is_reply(cause))
    if isinstance(error, (TempFailError, HostNotFoundError)):
        return True
    if isinstance(error, PermissionDeniedError):
        return _is_tls_failure(cause)  # a certificate; never a refused login
    if isinstance(error, UnavailableError):
        # A refused or unreachable connection, a TLS handshake; not a 5xx greeting nor
        # a missing STARTTLS (a setting to fix).
        return isinstance(cause, OSError)
    return False


def _is_reply(cause: BaseException) -> bool:
    import smtplib

    return isinstance(cause, smtplib.SMTPResponseException)


def _is_tls_failure(cause: BaseException | None) -> bool:
    import ssl

    return isinstance(cause, ssl.SSLError)
