"""Deliver now or keep for later: sendmail mode's promise that no message is lost.

`deliver_or_spool` tries once; when that fails for any reason that a later try could
overcome (a 4xx, a timeout, a refused or dropped connection, DNS, TLS, AUTH, missing
credentials or configuration) the message goes to the spool and the caller exits 75.
Only a permanent refusal of the message itself (5xx to MAIL FROM, to every RCPT, or to
DATA) and bad input are final: those are reported, not kept.

`run_queue` retries the spool over one SMTP connection per account. An entry is removed
only after the server accepted it; one refused permanently moves to `failed/`. First it
lets the spool finish what a killed run left half done and quarantine damaged entries
(outcome "damaged"): one bad entry never stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from typing import Literal

from mailcli.errors import (
    DataError,
    MailcliError,
    NoInputError,
    RejectedError,
    UsageError,
)
from mailcli.sendmail.spool import DamagedEntryError, QueueEntry, Spool
from mailcli.smtp.envelope import Envelope, Outgoing
from mailcli.smtp.session import SendResult, SmtpSession

PERMANENT_ERRORS = (RejectedError, DataError, UsageError, NoInputError)
SessionFactory = Callable[[str | None], SmtpSession]
# What became of one entry in a `queue run`, as the table and its JSON spell it.
QueueOutcome = Literal["delivered", "deferred", "failed", "damaged"]


@dataclass(frozen=True)
class Delivery:
    """What became of one sendmail-mode message."""

    result: SendResult | None  # None when nothing was delivered
    queued: QueueEntry | None  # the spool entry for what is left to deliver
    reason: str | None  # why it was queued


def deliver_or_spool(
    outgoing: Outgoing, *, account: str | None, open_session: SessionFactory, spool: Spool
) -> Delivery:
    try:
        with open_session(account) as session:
            result = session.send(outgoing)
    except PERMANENT_ERRORS:
        raise
    except MailcliError as exc:
        entry = spool.enqueue(outgoing, account=account, error=exc.message)
        return Delivery(None, entry, exc.message)
    deferred = _deferred_part(outgoing, result)
    if deferred is None:
        return Delivery(result, None, None)
    reason = _refusals(result, temporary=True)
    return Delivery(result, spool.enqueue(deferred, account=account, error=reason), reason)


def _deferred_part(outgoing: Outgoing, result: SendResult) -> Outgoing | None:
    """The same message for the recipients that got a 4xx, or None."""
    later = [address for address, reply in result.refused.items() if reply.temporary]
    if not later:
        return None
    envelope = Envelope(outgoing.envelope.sender, tuple(later))
    return outgoing._replace(envelope=envelope)


def _refusals(result: SendResult, *, temporary: bool) -> str:
    return "; ".join(
        f"{address}: {reply}"
        for address, reply in result.refused.items()
        if reply.temporary == temporary
    )


@dataclass(frozen=True)
class RunOutcome:
    """One entry after a `queue run`: delivered, deferred (still queued) or failed."""

    entry_id: str
    status: QueueOutcome
    detail: str


def run_queue(spool: Spool, open_session: SessionFactory) -> list[RunOutcome]:
    """Retry every entry, oldest first, one connection per account; locked."""
    outcomes: list[RunOutcome] = []
    with spool.lock():
        quarantined, finished = spool.recover()
        outcomes += [RunOutcome(item.id, "damaged", item.reason) for item in quarantined]
        outcomes += [
            RunOutcome(entry.id, "failed", entry.last_error or "refused permanently")
            for entry in finished
        ]
        entries = sorted(spool.entries(), key=lambda entry: (entry.account or "", entry.created))
        for account, group in groupby(entries, key=lambda entry: entry.account):
            outcomes += _run_account(spool, list(group), partial(open_session, account))
    return outcomes


def _run_account(
    spool: Spool, entries: list[QueueEntry], connect: Callable[[], SmtpSession]
) -> list[RunOutcome]:
    outcomes: list[RunOutcome] = []
    with _LazySession(connect) as sessions:
        for position, entry in enumerate(entries):
            try:
                outgoing = spool.message(entry)
            except DamagedEntryError as exc:
                reason = f"damaged queue entry: {exc.message}"
                spool.quarantine(entry.id, reason)
                outcomes.append(RunOutcome(entry.id, "damaged", reason))
                continue
            try:
                result = sessions.get().send(outgoing)
            except PERMANENT_ERRORS as exc:
                sessions.drop()
                spool.move_to_failed(entry, exc.message)
                outcomes.append(RunOutcome(entry.id, "failed", exc.message))
                continue
            except MailcliError as exc:
                # The server or the network is not ready: leave this and the rest for later.
                for waiting in entries[position:]:
                    outcomes.append(_defer(spool, waiting, waiting.recipients, exc.message))
                break
            outcomes.append(_settle(spool, entry, result))
    return outcomes


def _settle(spool: Spool, entry: QueueEntry, result: SendResult) -> RunOutcome:
    later = [address for address, reply in result.refused.items() if reply.temporary]
    if later:
        return _defer(spool, entry, later, _refusals(result, temporary=True))
    refused = _refusals(result, temporary=False)
    if not result.accepted:
        spool.move_to_failed(entry, refused)
        return RunOutcome(entry.id, "failed", refused)
    spool.remove(entry.id)
    detail = str(result.reply) + (f" (refused: {refused})" if refused else "")
    return RunOutcome(entry.id, "delivered", detail)


def _defer(spool: Spool, entry: QueueEntry, recipients: list[str], error: str) -> RunOutcome:
    entry.recipients = recipients
    entry.attempts += 1
    entry.last_error = error
    entry.last_attempt = time.time()
    spool.update(entry)
    return RunOutcome(entry.id, "deferred", error)


class _LazySession:
    """Opens the SMTP session on first use and again after a failed message."""

    def __init__(self, connect: Callable[[], SmtpSession]) -> None:
        self.connect = connect
        self.session: SmtpSession | None = None

    def get(self) -> SmtpSession:
        if self.session is None:
            session = self.connect()
            session.__enter__()
            self.session = session
        return self.session

    def drop(self) -> None:
        if self.session is not None:
            self.session.__exit__(RuntimeError)
            self.session = None

    def __enter__(self) -> _LazySession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self.session is not None:
            self.session.__exit__(exc_type)
            self.session = None
