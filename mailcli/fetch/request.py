"""What `mailcli fetch` is asked (`FetchRequest`: the options as given, None where one
was not), and how it combines with the account's [fetch] keys into the destination and
the `FetchOptions` of the run (`resolve`).

The precedence, for every setting: the option, else the account's key, else the
default (the destination `maildir:~/Maildir`, keep, no filter, no Received line). For
deletion (`fetch.retention`):
- `--keep` or `--delete` beats the `delete_after` key, and `--delete-after` with either
  of them is 64 (it already says when to delete);
- `--delete-after 0` is `--delete`;
- `--mark-seen` deletes nothing: whatever asked for deletion is dropped with a warning.

Nothing here prints: the warnings are returned for the caller to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from mailcli.errors import UsageError
from mailcli.fetch.summary import FetchOptions

if TYPE_CHECKING:
    from mailcli.config import FetchSettings
    from mailcli.fetch.filter import HeaderFilter

DEFAULT_DESTINATION = "maildir:~/Maildir"
MARK_SEEN_DELETES_NOTHING = "--mark-seen never deletes: nothing is deleted in this run"


@dataclass(frozen=True)
class FetchRequest:
    """The command's options, named as its click parameters; None: not given."""

    destination: str | None = None
    keep: bool | None = None  # --keep True, --delete False
    everything: bool = False
    max_size: int | None = None
    limit: int | None = None
    dry_run: bool = False
    lmtp_rcpt: str | None = None
    received_header: bool | None = None
    filter_command: str | None = None
    delete_after: int | None = None
    delete_larger_than: int | None = None
    mark_seen: bool = False


class ResolvedFetch(NamedTuple):
    destination: str  # the --to form: maildir:, mbox:, mda: or lmtp:
    options: FetchOptions
    warnings: list[str]


def resolve(request: FetchRequest, settings: FetchSettings, timeout: float) -> ResolvedFetch:
    """The run's destination and options (see the module docstring). A filter whose
    program is missing is 78 here, before any connection; its deadline per message is
    the network timeout."""
    delete, days, larger, warnings = _deletion(request, settings)
    received = request.received_header
    options = FetchOptions(
        delete=delete,
        everything=request.everything,
        max_size=request.max_size,
        limit=request.limit,
        dry_run=request.dry_run,
        lmtp_rcpt=request.lmtp_rcpt or settings.lmtp_rcpt,
        header_filter=_header_filter(request.filter_command or settings.filter, timeout),
        received_header=settings.received_header if received is None else received,
        delete_after=days,
        delete_larger_than=larger,
        mark_seen=request.mark_seen,
    )
    destination = request.destination or settings.to or DEFAULT_DESTINATION
    return ResolvedFetch(destination, options, warnings)


def _deletion(
    request: FetchRequest, settings: FetchSettings
) -> tuple[bool, int | None, int | None, list[str]]:
    """delete, delete_after, delete_larger_than, and the warnings."""
    keep, days = request.keep, request.delete_after
    if keep is not None and days is not None:
        raise UsageError("--delete-after says when to delete: give it without --keep or --delete")
    days = settings.delete_after if days is None and keep is None else days
    delete = (not keep) if keep is not None else settings.delete
    if days is not None:  # 0 is --delete
        delete, days = days == 0, days or None
    larger = request.delete_larger_than
    larger = settings.delete_larger_than if larger is None else larger
    if request.mark_seen and (delete or days is not None or larger is not None):
        return False, None, None, [MARK_SEEN_DELETES_NOTHING]
    return delete, days, larger, []


def _header_filter(command: str | None, timeout: float) -> HeaderFilter | None:
    if command is None:
        return None
    from mailcli.fetch.filter import HeaderFilter

    return HeaderFilter.checked(command, timeout=timeout)
