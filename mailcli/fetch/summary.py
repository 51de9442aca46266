"""What a fetch run is asked (`FetchOptions`), what it reports (`FetchSummary`: counts,
the messages it left or deleted unread and why, the warnings, `--json`, the status a run
that got to its end exits with), and whom it tells as it goes (`Progress`).

Plain records: the run (`fetch.run`) fills them, the CLI renders them; nothing here
touches a server or a destination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailcli.errors import ExitStatus
from mailcli.pop3.commands import MessageInfo, display_uid

if TYPE_CHECKING:
    from mailcli.fetch.filter import HeaderFilter


@dataclass(frozen=True)
class FetchOptions:
    delete: bool = False
    everything: bool = False  # --all: ignore the state, fetch every message
    max_size: int | None = None
    limit: int | None = None
    dry_run: bool = False
    lmtp_rcpt: str | None = None  # --to lmtp:'s recipient; None: the account's user
    header_filter: HeaderFilter | None = None  # judges each new header first (`fetch.filter`)
    received_header: bool = False  # a Received line before each message (`fetch.received`)
    delete_after: int | None = None  # days a stored message stays (`fetch.retention`)
    delete_larger_than: int | None = None  # octets: larger new mail is deleted unread
    mark_seen: bool = False  # record what the server has, fetch and delete nothing


@dataclass
class FetchSummary:
    fetched: int = 0
    deleted: int = 0
    octets: int = 0
    seconds: float = 0.0
    planned: int = 0  # what a --dry-run would fetch
    skipped: list[MessageInfo] = field(default_factory=list)  # over --max-size
    no_uidl: bool = False
    note: str = ""  # why nothing is new, when the destination changed since last time
    reused: list[tuple[MessageInfo, int]] = field(default_factory=list)  # (now, size before)
    filter_skipped: int = 0  # left on the server by the filter's "skip"
    filter_failure: str | None = None  # why the filter stopped judging (the run ends 75)
    deleted_unread: list[MessageInfo] = field(default_factory=list)  # --delete-larger-than
    expiring: int = 0  # what a --dry-run would delete of the recorded messages
    marked: int | None = None  # --mark-seen: UIDs recorded without downloading
    refused: list[tuple[MessageInfo, str]] = field(default_factory=list)  # left, and why

    @property
    def exit_status(self) -> int:
        """The status of a run that got to its end: 75 when the filter stopped judging (a
        rerun may cure it), else 69 when a message was refused for good, else 0."""
        if self.filter_failure:
            return int(ExitStatus.TEMPFAIL)
        if self.refused:
            return int(ExitStatus.UNAVAILABLE)
        return int(ExitStatus.OK)

    def warnings(self) -> list[str]:
        """What the user must hear about even when all went well."""
        return [
            f"the server reused UID {display_uid(m.uid)!r} for another message ({m.size} "
            f"octets, not {size}): treated as new, not as the one fetched earlier"
            for m, size in self.reused
        ]

    def refusals(self) -> list[str]:
        """One line per message the destination refused for good (left on the server)."""
        return [
            f"message {m.number} (uid {display_uid(m.uid)!r}) not delivered: {why}"
            for m, why in self.refused
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            **({"note": self.note} if self.note else {}),
            "fetched": self.fetched,
            "skipped": len(self.skipped),
            **({"filter_skipped": self.filter_skipped} if self.filter_skipped else {}),
            "deleted": self.deleted,
            "bytes": self.octets,
            "seconds": round(self.seconds, 3),
            "skipped_messages": [
                {"number": m.number, "size": m.size, "uid": display_uid(m.uid)}
                for m in self.skipped
            ],
            "deleted_unread": [  # over --delete-larger-than
                {"number": m.number, "size": m.size, "uid": display_uid(m.uid)}
                for m in self.deleted_unread
            ],
            **({"marked": self.marked} if self.marked is not None else {}),
            **(
                {"refused_messages": [_refused(m, why) for m, why in self.refused]}
                if self.refused
                else {}
            ),
        }


@dataclass
class Progress:
    """Callbacks for a progress display; all optional."""

    start: Callable[[int, int], object] = lambda messages, octets: None
    message: Callable[[int], object] = lambda octets: None


def _refused(message: MessageInfo, why: str) -> dict[str, Any]:
    """A message the destination refused for good, for --json."""
    return {
        "number": message.number,
        "size": message.size,
        "uid": display_uid(message.uid),
        "reason": why,
    }
