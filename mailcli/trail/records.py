"""The trail's records: one line per message for `send`, `sendmail` and `queue run`, and
one per `fetch` run (the format: `line.py`). Fields, in this order, left out when
unknown or not applicable:

message: time, command (send, sendmail, queue-run), account, server (HOST:PORT: the
  one that answered), relay (the fallback account whose server took it, when one did),
  from (the envelope sender; "" for <>), rcpt (one per recipient, in envelope order:
  "ADDRESS CODE ENHANCED", the RCPT reply's code and RFC 3463 status, `-` for none),
  size (the message's bytes), queue_id (the server's, when its reply to the message
  says "queued as ID" or "id=ID"), spool_id (mailcli's queue entry), outcome, reply (the
  server's reply to the message), error (why it was not sent), exit (the status of this
  message: the command's own for send and sendmail; for a queue run what that entry
  alone would make it).
  outcome: send and sendmail: sent, partial (some recipients refused or queued), queued,
  refused (permanently), failed, stopped (send --quit-after: no message, as asked);
  queue-run: the entry's outcomes as `queue run` shows them (delivered, deferred,
  failed, refused, damaged), comma-separated.
fetch: time, command (fetch), account, server, mailbox (USER@HOST), fetched, skipped,
  deleted, bytes, refused (messages the destination refused for good, left on the
  server), error, exit (the status the run exits with: 69 when a message was refused,
  75 when the header filter failed, its `error` then says why). A run that failed
  before its end has no counts. With several accounts, each account's run is its own
  line with its own status.

Nothing here ever holds a secret: no password, token or AUTH line reaches a result.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from mailcli.errors import ExitStatus
from mailcli.trail.line import Field, format_line, now

if TYPE_CHECKING:
    from mailcli.endpoint import Endpoint
    from mailcli.fetch.run import FetchSummary
    from mailcli.sendmail.deliver import Delivery, QueueReport
    from mailcli.sendmail.entry import QueueEntry
    from mailcli.sendmail.spool import Spool
    from mailcli.smtp.envelope import Outgoing
    from mailcli.smtp.failover import RelayUsed
    from mailcli.smtp.result import SendResult

# Postfix, Sendmail and most others: "queued as ID"; Exim: "OK id=ID".
_QUEUE_ID = re.compile(r"(?:queued as|\bid=)\s*([A-Za-z0-9._-]{1,64})", re.IGNORECASE)


class Record(NamedTuple):
    """One line of the trail, and whether it tells of a success (syslog's severity)."""

    line: str
    success: bool


class Failure(NamedTuple):
    """What a run that raised left: its one-line message and exit status."""

    message: str
    exit_status: int


class Message(NamedTuple):
    """One message's record, however the command came by its parts."""

    command: str
    account: str | None
    server: str | None
    sender: str | None
    recipients: Sequence[str]
    size: int | None
    result: SendResult | None
    outcome: str
    exit_status: int
    error: str | None = None
    spool_id: str | None = None
    relay: RelayUsed | None = None  # the server that answered, when one did

    def record(self) -> Record:
        result = self.result
        fields: list[Field] = [
            ("time", now()),
            ("command", self.command),
            ("account", self.account),
            ("server", self.relay.server if self.relay is not None else self.server),
            ("relay", self.relay.account if self.relay and self.relay.fallback else None),
            ("from", self.sender),
        ]
        fields += [("rcpt", _recipient(address, result)) for address in self.recipients]
        reply = result.reply if result is not None else None
        fields += [
            ("size", self.size),
            ("queue_id", _queue_id(reply.message) if reply is not None else None),
            ("spool_id", self.spool_id),
            ("outcome", self.outcome),
            ("reply", str(reply) if reply is not None else None),
            ("error", self.error),
            ("exit", int(self.exit_status)),
        ]
        return Record(format_line(fields), self.exit_status == ExitStatus.OK)


def sent(
    command: str,
    endpoint: Endpoint,
    outgoing: Outgoing,
    outcome: SendResult | Failure,
    relay: RelayUsed | None = None,
) -> Record:
    """`send`: its result, or the error it ended with."""
    result = outcome if not isinstance(outcome, Failure) else None
    status = result.exit_status if result is not None else outcome.exit_status
    return Message(
        command,
        endpoint.account,
        endpoint.where,
        outgoing.envelope.sender,
        outgoing.envelope.recipients,
        outgoing.size,
        result,
        _outcome(result, status, queued=False),
        status,
        error=outcome.message if isinstance(outcome, Failure) else None,
        relay=relay,
    ).record()


def delivered(
    account: str | None, server: str | None, outgoing: Outgoing, outcome: Delivery | Failure
) -> Record:
    """`sendmail`: what became of the message (sent, queued), or the error."""
    failure = outcome if isinstance(outcome, Failure) else None
    delivery = outcome if not isinstance(outcome, Failure) else None
    result = delivery.result if delivery is not None else None
    queued = delivery.queued if delivery is not None else None
    error = failure.message if failure is not None else delivery.reason if delivery else None
    return Message(
        "sendmail",
        account,
        server,
        outgoing.envelope.sender,
        outgoing.envelope.recipients,
        outgoing.size,
        result,
        _outcome(result, outcome.exit_status, queued=queued is not None),
        outcome.exit_status,
        error=error,
        spool_id=queued.id if queued is not None else None,
        relay=delivery.relay if delivery is not None else None,
    ).record()


def _outcome(result: SendResult | None, status: int, *, queued: bool) -> str:
    reply = result.reply if result is not None else None
    if result is not None and result.accepted and reply is not None and 200 <= reply.code < 300:
        return "partial" if result.refused else "sent"
    if queued:
        return "queued"
    if status == ExitStatus.OK:  # send --quit-after: stopped before the message, as asked
        return "stopped"
    return "refused" if status in (ExitStatus.NOUSER, ExitStatus.UNAVAILABLE) else "failed"


class Waiting(NamedTuple):
    """A queue entry as it was before the run, and its message's size."""

    entry: QueueEntry
    size: int | None


def waiting(spool: Spool) -> dict[str, Waiting]:
    """The queue before a run: what a run's records say of each entry."""
    found = {}
    for entry in spool.entries():
        try:
            size: int | None = os.stat(spool.directory / f"{entry.id}.eml").st_size
        except OSError:
            size = None
        found[entry.id] = Waiting(entry, size)
    return found


def queue_run(
    report: QueueReport, before: dict[str, Waiting], server_of: Callable[[str | None], str | None]
) -> Iterable[tuple[str | None, Record]]:
    """`queue run`: (the entry's account, its record) for each entry the run reached."""
    from mailcli.sendmail.deliver import QueueReport

    for entry_id in dict.fromkeys(outcome.entry_id for outcome in report.outcomes):
        outcomes = [outcome for outcome in report.outcomes if outcome.entry_id == entry_id]
        known = before.get(entry_id)
        entry = known.entry if known is not None else None
        account = entry.account if entry is not None else None
        problems = [o.detail for o in outcomes if o.status != "delivered"]
        relays = [outcome.relay for outcome in outcomes if outcome.relay is not None]
        record = Message(
            "queue-run",
            account,
            server_of(account) if entry is not None else None,
            entry.envelope_from if entry is not None else None,
            entry.recipients if entry is not None else (),
            known.size if known is not None else None,
            report.results.get(entry_id),
            ",".join(outcome.status for outcome in outcomes),
            QueueReport(outcomes).exit_status,
            error="; ".join(problems) or None,
            spool_id=entry_id,
            relay=relays[-1] if relays else None,
        ).record()
        yield account, record


def fetched(endpoint: Endpoint, outcome: FetchSummary | Failure) -> Record:
    """`fetch`: one run of one account."""
    user = endpoint.user
    fields: list[Field] = [
        ("time", now()),
        ("command", "fetch"),
        ("account", endpoint.account),
        ("server", endpoint.where),
        ("mailbox", f"{user}@{endpoint.host}" if user else endpoint.host),
    ]
    if isinstance(outcome, Failure):
        fields += [("error", outcome.message), ("exit", int(outcome.exit_status))]
        return Record(format_line(fields), False)
    status = outcome.exit_status  # what the command exits with (fetch.run)
    fields += [
        ("fetched", outcome.fetched),
        ("skipped", len(outcome.skipped)),
        ("deleted", outcome.deleted),
        ("bytes", outcome.octets),
        ("refused", len(outcome.refused)),
        ("error", outcome.filter_failure),
        ("exit", status),
    ]
    return Record(format_line(fields), status == ExitStatus.OK)


def _recipient(address: str, result: SendResult | None) -> str:
    reply = result.replies.get(address) if result is not None else None
    if reply is None:
        return f"{address} - -"
    return f"{address} {reply.code} {reply.enhanced_status or '-'}"


def _queue_id(text: str) -> str | None:
    found = _QUEUE_ID.search(text)
    return found.group(1) if found else None
