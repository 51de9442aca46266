"""Deliver now or keep for later: sendmail mode's promise that no message is lost.

`deliver_or_spool` tries once: the account's server, then its fallbacks' while each
fails temporarily before anyone accepted the message (`mailcli.smtp.failover`). When
that fails for any reason that a later try could overcome (a 4xx, a timeout, a refused
or dropped connection, DNS, TLS, AUTH, missing credentials or configuration) the
message goes to the spool under the account (not the fallback) and the caller exits 0
with a notice. Only a permanent refusal of the message itself (5xx to MAIL FROM, to
every RCPT, or to DATA) and bad input are final: those are reported, not kept. A stop
by SIGTERM or SIGHUP before the server accepted the message queues it too: nobody else
holds it.

`run_queue` retries the spool over one SMTP connection per relay of each entry's
account (its own server, then its fallbacks, tried again on every run; a relay down
stays down for the rest of the run, so the next entries go straight to the next), each
message one transaction (pipelined when the server offers it; no RSET after a
completed one), the last one's QUIT with its final dot. An entry is removed only after
a server accepted it; one refused permanently moves to `failed/`. First it lets the
spool finish what a killed run left half done and quarantine damaged entries (outcome
"damaged"): one bad entry never stops the others. When some recipients accept and
others are refused permanently (outcome "refused"), the refused ones are kept in
`failed/` (a copy of the entry naming only them) and the accepted ones never get the
message again; those that got a 4xx stay queued alone. Each outcome names the relay
that answered (`RunOutcome.relay`, `Delivery.relay`).

A queue that cannot be written (a full disk) stops the run: `QueueReport.error` (74 or
73) after the outcomes so far. The spool makes sure that even then no recipient that
accepted the message is sent it again (see `Spool.narrow` and `Spool.remove`).

The exit statuses are the results' own (`Delivery.exit_status`, `QueueReport.exit_status`):
the CLI prints the results and returns those, deciding nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING, Literal

from mailcli.errors import (
    DataError,
    ExitStatus,
    MailcliError,
    NoInputError,
    RejectedError,
    Stopped,
    UsageError,
)
from mailcli.fsutil import write_error
from mailcli.sendmail.entry import QueueEntry
from mailcli.sendmail.spool import DamagedEntryError, Spool
from mailcli.smtp.envelope import Envelope, Outgoing
from mailcli.smtp.failover import Relay, RelayChain, RelayUsed
from mailcli.smtp.session import SendResult

if TYPE_CHECKING:
    from mailcli.smtp.reply import Reply

PERMANENT_ERRORS = (RejectedError, DataError, UsageError, NoInputError)
# An account's name (None: the default) -> its relays: its own server, then its fallbacks.
RelayFactory = Callable[[str | None], Sequence[Relay]]
# What became of one entry in a `queue run`, as the table and its JSON spell it.
QueueOutcome = Literal["delivered", "deferred", "failed", "refused", "damaged"]


@dataclass(frozen=True)
class Delivery:
    """What became of one sendmail-mode message."""

    result: SendResult | None  # None when nothing was delivered
    queued: QueueEntry | None  # the spool entry for what is left to deliver
    reason: str | None  # why it was queued
    relay: RelayUsed | None = None  # the server that answered, when one did

    @property
    def refused(self) -> dict[str, Reply]:
        """The recipients refused permanently: reported, never queued."""
        refused = self.result.refused if self.result is not None else {}
        return {address: reply for address, reply in refused.items() if not reply.temporary}

    @property
    def exit_status(self) -> ExitStatus:
        """67 when some recipients were refused permanently, else 0: a message queued is
        the caller's success, since the queue owns it now (a 75 made mail clients report
        a failure and resend a message that `queue run` then delivered too)."""
        return ExitStatus.NOUSER if self.refused else ExitStatus.OK


def deliver_or_spool(
    outgoing: Outgoing, *, account: str | None, open_relays: RelayFactory, spool: Spool
) -> Delivery:
    """Hand `outgoing` to the first relay of `account` that takes it, else queue it
    under `account` (its fallbacks are tried again by `queue run`)."""
    try:
        with RelayChain(open_relays(account)) as chain:
            result, relay = chain.send(outgoing, last=True)
    except PERMANENT_ERRORS:
        raise
    except MailcliError as exc:
        entry = spool.enqueue(outgoing, account=account, error=exc.message)
        return Delivery(None, entry, exc.message)
    except Stopped as stop:
        # Our caller has already handed the message over and holds no copy: a stop
        # (shutdown, supervisor) queues it like any temporary failure. The signal handler
        # ignores a second stop while this runs.
        reason = f"stopped by signal {stop.signum} before the server accepted it"
        return Delivery(None, spool.enqueue(outgoing, account=account, error=reason), reason)
    deferred = _deferred_part(outgoing, result)
    if deferred is None:
        return Delivery(result, None, None, relay)
    reason = _refusals(result, temporary=True)
    entry = spool.enqueue(deferred, account=account, error=reason)
    return Delivery(result, entry, reason, relay)


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
    """One entry after a `queue run`: delivered, deferred (still queued), failed, refused
    (some recipients refused permanently; kept in failed/) or damaged. An entry can have
    two: refused for some recipients, deferred or delivered for the others."""

    entry_id: str
    status: QueueOutcome
    detail: str
    relay: RelayUsed | None = None  # the server that answered, when one did


@dataclass
class QueueReport:
    """What a `queue run` did, and what stopped it early (the queue could not be written)."""

    outcomes: list[RunOutcome]
    error: MailcliError | None = None
    results: dict[str, SendResult] = field(default_factory=dict)  # entry id: its answer

    def add(
        self, entry_id: str, status: QueueOutcome, detail: str, relay: RelayUsed | None = None
    ) -> None:
        self.outcomes.append(RunOutcome(entry_id, status, detail, relay))

    @property
    def exit_status(self) -> ExitStatus:
        """The error's status (74/73) when the queue could not be written; else 75 while
        some entry waits, 69 when some failed or were damaged, 67 when some recipients
        were refused, 0 when everything went."""
        if self.error is not None:
            return self.error.exit_status
        statuses = {outcome.status for outcome in self.outcomes}
        if "deferred" in statuses:
            return ExitStatus.TEMPFAIL
        if statuses & {"failed", "damaged"}:
            return ExitStatus.UNAVAILABLE
        return ExitStatus.NOUSER if "refused" in statuses else ExitStatus.OK


def run_queue(spool: Spool, open_relays: RelayFactory) -> QueueReport:
    """Retry every entry, oldest first, one connection per relay of each account; locked."""
    report = QueueReport([])
    with spool.lock():
        try:
            quarantined, finished = spool.recover()
        except OSError as exc:
            report.error = write_error(exc, f"the queue {spool.directory}")
            return report
        for item in quarantined:
            report.add(item.id, "damaged", item.reason)
        for entry in finished:
            report.add(entry.id, "failed", entry.last_error or "refused permanently")
        entries = sorted(spool.entries(), key=lambda entry: (entry.account or "", entry.created))
        for account, group in groupby(entries, key=lambda entry: entry.account):
            _run_account(spool, list(group), partial(open_relays, account), report)
            if report.error is not None:
                break
    return report


def _run_account(
    spool: Spool,
    entries: list[QueueEntry],
    relays: Callable[[], Sequence[Relay]],
    report: QueueReport,
) -> None:
    try:
        chain = RelayChain(relays())
    except MailcliError as exc:  # the account's servers cannot even be named (config)
        _defer_all(spool, entries, exc.message, report)
        return
    try:
        with chain:
            for position in range(len(entries)):
                if not _attempt(spool, entries, position, chain, report):
                    return
    except OSError as exc:
        report.error = write_error(exc, f"the queue {spool.directory}")


def _attempt(
    spool: Spool,
    entries: list[QueueEntry],
    position: int,
    chain: RelayChain,
    report: QueueReport,
) -> bool:
    """Send one entry and record what became of it; False: leave the rest for later."""
    entry = entries[position]
    try:
        outgoing = spool.message(entry)
    except DamagedEntryError as exc:
        reason = f"damaged queue entry: {exc.message}"
        report.add(entry.id, "damaged", reason)
        spool.quarantine(entry.id, reason)
        return True
    try:
        # The last entry's QUIT may go with its final dot (pipelining).
        result, relay = chain.send(outgoing, last=position == len(entries) - 1)
    except PERMANENT_ERRORS as exc:
        report.add(entry.id, "failed", exc.message)
        spool.move_to_failed(entry, exc.message)
        return True
    except MailcliError as exc:
        # No relay is ready (or one failed in a way that must not move on): leave
        # this and the rest for later.
        _defer_all(spool, entries[position:], exc.message, report)
        return False
    report.results[entry.id] = result
    _settle(spool, entry, result, partial(report.add, relay=relay))
    return True


def _defer_all(spool: Spool, entries: list[QueueEntry], reason: str, report: QueueReport) -> None:
    for waiting in entries:
        report.add(waiting.id, "deferred", reason)
        _defer(spool, waiting, waiting.recipients, reason)


def _settle(
    spool: Spool,
    entry: QueueEntry,
    result: SendResult,
    report: Callable[[str, QueueOutcome, str], None],
) -> None:
    """Record the server's answer, `report`ing each outcome before the spool changes, so
    a full disk stopping the run still says what the server did."""
    later = [address for address, reply in result.refused.items() if reply.temporary]
    refused = [address for address, reply in result.refused.items() if not reply.temporary]
    refusals = _refusals(result, temporary=False)
    if not result.accepted and not later:
        report(entry.id, "failed", refusals)
        spool.move_to_failed(entry, refusals)
        return
    unrecorded: OSError | None = None
    if refused:
        report(entry.id, "refused", refusals)
        try:
            spool.keep_refused(entry, refused, refusals)
        except OSError as exc:
            unrecorded = exc  # reported above; the accepted part must still be recorded
    if later:
        reason = _refusals(result, temporary=True)
        report(entry.id, "deferred", reason)
        _defer(spool, entry, later, reason, delivered=result.accepted)
    else:
        report(entry.id, "delivered", str(result.reply))
        spool.remove(entry.id)
    if unrecorded is not None:
        raise unrecorded


def _defer(
    spool: Spool,
    entry: QueueEntry,
    recipients: list[str],
    error: str,
    *,
    delivered: list[str] | None = None,
) -> None:
    entry.recipients = recipients
    entry.attempts += 1
    entry.last_error = error
    entry.last_attempt = time.time()
    if delivered:
        spool.narrow(entry, delivered)
    else:
        spool.update(entry)
