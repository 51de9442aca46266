"""The precedence of `mailcli fetch`'s options over the account's [fetch] keys over the
defaults, setting by setting (`fetch.request.resolve`); the runs themselves are tested
against Dovecot in the other modules."""

from __future__ import annotations

import pytest

from mailcli.config import FetchSettings
from mailcli.errors import ExitStatus, MailcliError, UsageError
from mailcli.fetch.request import (
    DEFAULT_DESTINATION,
    MARK_SEEN_DELETES_NOTHING,
    FetchRequest,
    resolve,
)

KEYS = FetchSettings(
    to="mbox:~/keyed",
    delete=True,
    lmtp_rcpt="keyed@example.test",
    delete_after=7,
    delete_larger_than=1000,
    received_header=True,
    filter="true",
)


def test_without_options_or_keys_the_defaults() -> None:
    resolved = resolve(FetchRequest(), FetchSettings(), 30.0)
    assert resolved.destination == DEFAULT_DESTINATION == "maildir:~/Maildir"
    options = resolved.options
    assert not options.delete and options.delete_after is None
    assert options.delete_larger_than is None and options.header_filter is None
    assert not options.received_header and options.lmtp_rcpt is None
    assert resolved.warnings == []


def test_the_keys_when_no_option_is_given() -> None:
    resolved = resolve(FetchRequest(), KEYS, 30.0)
    assert resolved.warnings == []
    options = resolved.options
    assert resolved.destination == "mbox:~/keyed"
    # delete_after says when: a message is deleted 7 days after it was stored, not at once
    assert (options.delete, options.delete_after, options.delete_larger_than) == (False, 7, 1000)
    assert options.lmtp_rcpt == "keyed@example.test" and options.received_header
    assert options.header_filter is not None


def test_every_option_beats_its_key() -> None:
    request = FetchRequest(
        destination="maildir:/given",
        keep=True,
        lmtp_rcpt="given@example.test",
        received_header=False,
        delete_larger_than=5,
    )
    resolved = resolve(request, KEYS, 30.0)
    options = resolved.options
    assert resolved.destination == "maildir:/given"
    assert not options.delete and options.delete_after is None  # --keep beats delete_after
    assert options.delete_larger_than == 5 and options.lmtp_rcpt == "given@example.test"
    assert not options.received_header


@pytest.mark.parametrize(
    ("days", "delete", "after"), [(0, True, None), (3, False, 3)], ids=["zero", "three"]
)
def test_delete_after_zero_is_delete(days: int, delete: bool, after: int | None) -> None:
    options = resolve(FetchRequest(delete_after=days), FetchSettings(), 30.0).options
    assert (options.delete, options.delete_after) == (delete, after)


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
def test_delete_after_with_keep_or_delete_is_64(keep: bool) -> None:
    with pytest.raises(UsageError) as raised:
        resolve(FetchRequest(keep=keep, delete_after=2), FetchSettings(), 30.0)
    assert raised.value.exit_status == ExitStatus.USAGE


def test_mark_seen_drops_every_deletion_with_a_warning() -> None:
    resolved = resolve(FetchRequest(mark_seen=True), KEYS, 30.0)
    options = resolved.options
    assert options.mark_seen and not options.delete
    assert options.delete_after is None and options.delete_larger_than is None
    assert resolved.warnings == [MARK_SEEN_DELETES_NOTHING]
    quiet = resolve(FetchRequest(mark_seen=True), FetchSettings(), 30.0)
    assert quiet.warnings == []


def test_a_missing_filter_program_is_78_before_anything() -> None:
    request = FetchRequest(filter_command="/nonexistent/judge %F")
    with pytest.raises(MailcliError) as raised:
        resolve(request, FetchSettings(), 30.0)
    assert raised.value.exit_status == ExitStatus.CONFIG
