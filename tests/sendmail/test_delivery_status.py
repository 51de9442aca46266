"""The exit-status policy of sendmail mode, as the result types state it: a delivery's
(0 even when queued, 67 for a permanent refusal) and a queue run's (the queue's write
error first, then 75 while anything waits, 69 failed or damaged, 67 refused, 0)."""

from __future__ import annotations

import itertools

import pytest

from mailcli.errors import CantCreateError, ExitStatus, LocalIOError
from mailcli.sendmail.deliver import Delivery, QueueOutcome, QueueReport
from mailcli.sendmail.entry import QueueEntry
from mailcli.smtp.reply import Reply
from mailcli.smtp.session import SendResult

OUTCOMES: tuple[QueueOutcome, ...] = ("delivered", "deferred", "failed", "refused", "damaged")


def sent(**replies: int) -> SendResult:
    """A result whose recipients (keyword: local part) got these RCPT codes."""
    result = SendResult("a@example.test")
    for local, code in replies.items():
        address = f"{local}@example.test"
        if code < 400:
            result.accepted.append(address)
        else:
            result.refused[address] = Reply(code, "5.1.1 no" if code >= 500 else "4.2.0 later")
    return result


def queued() -> QueueEntry:
    return QueueEntry("id1", 0.0, None, "a@example.test", ["c@example.test"])


@pytest.mark.parametrize(
    ("delivery", "status", "refused"),
    [
        (Delivery(sent(b=250), None, None), ExitStatus.OK, []),
        (Delivery(None, queued(), "connection refused"), ExitStatus.OK, []),
        (Delivery(sent(b=250, c=450), queued(), "c: 450"), ExitStatus.OK, []),
        (Delivery(sent(b=550, c=250), None, None), ExitStatus.NOUSER, ["b@example.test"]),
        (Delivery(sent(b=550, c=450), queued(), "c: 450"), ExitStatus.NOUSER, ["b@example.test"]),
    ],
)
def test_a_delivery_is_67_only_for_a_permanent_refusal(
    delivery: Delivery, status: ExitStatus, refused: list[str]
) -> None:
    assert delivery.exit_status is status
    assert list(delivery.refused) == refused


def expected(outcomes: set[QueueOutcome]) -> ExitStatus:
    if "deferred" in outcomes:
        return ExitStatus.TEMPFAIL
    if outcomes & {"failed", "damaged"}:
        return ExitStatus.UNAVAILABLE
    return ExitStatus.NOUSER if "refused" in outcomes else ExitStatus.OK


@pytest.mark.parametrize("size", range(len(OUTCOMES) + 1))
def test_a_queue_run_is_the_most_urgent_of_its_outcomes(size: int) -> None:
    for chosen in itertools.combinations(OUTCOMES, size):
        report = QueueReport([])
        for number, outcome in enumerate(chosen):
            report.add(f"id{number}", outcome, "detail")
        assert report.exit_status is expected(set(chosen)), chosen


@pytest.mark.parametrize("error", [LocalIOError("disk full"), CantCreateError("read-only")])
def test_a_queue_that_could_not_be_written_has_its_errors_status(
    error: LocalIOError | CantCreateError,
) -> None:
    report = QueueReport([], error)
    report.add("id1", "deferred", "later")
    assert report.exit_status is error.exit_status
