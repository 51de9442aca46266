"""What fetch deletes on the server besides what it fetches, and what it marks as seen.

- `--delete` (key `delete = true`): every recorded message, right after it is stored.
- `--delete-after DAYS` (key `delete_after`): a recorded message once it was stored at
  least DAYS days ago (DAYS times 86,400 s before now), by the time the fetch state keeps
  for its UID (`fetch.state`); DAYS 0 is `--delete`. A message stored in this run is
  never deleted by it unless DAYS is 0. As mpop's `keep DURATION` (1.4.23): mail is kept
  on the server at least that long after it was retrieved, then deleted. UIDs recorded
  before the state kept times count from the upgrade (never deleted at once because of
  it). `--keep` on the command line keeps everything the key would delete after DAYS;
  `--keep` or `--delete` together with `--delete-after` is a usage error (64).
- `--delete-larger-than BYTES` (key `delete_larger_than`): a message not yet recorded
  whose LIST size is larger is deleted without being downloaded (no RETR, no TOP), with
  `--keep` too: mpop's `killsize` idea, except that mpop with `keep` only skips such
  mail; here the option says "delete" and does it. A message already recorded is
  retention's business, not this option's. Reported per message, also by `--dry-run`
  (which deletes nothing).
- `--mark-seen`: every UID the server lists that is not recorded (or recorded with
  another size: a reused UID) is recorded with its LIST size, in one durable append,
  without downloading anything; it never deletes (a `--delete`, `--delete-after` or
  `--delete-larger-than` in force is ignored, and the CLI says so). A server without
  UIDL cannot have its messages marked: 69.

Every deletion is a DELE the server carries out at QUIT: a run killed before QUIT
deletes nothing, and the next run decides again from the same state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from mailcli.errors import UnavailableError
from mailcli.pop3.commands import MessageInfo

DAY = 86400  # seconds


def expired(
    already: Sequence[MessageInfo],
    stored_at: Mapping[str, int],
    *,
    delete: bool,
    days: int | None,
    now: float,
) -> list[MessageInfo]:
    """The recorded messages (`already`) to delete now: all of them with `delete`;
    with `days`, those stored at least that many days before `now` (a UID whose time is
    unknown counts as stored now)."""
    if delete:
        return list(already)
    if days is None:
        return []
    limit = now - days * DAY
    return [m for m in already if m.uid and stored_at.get(m.uid, now) <= limit]


def oversized(
    fresh: Sequence[MessageInfo], limit: int | None
) -> tuple[list[MessageInfo], list[MessageInfo]]:
    """(the messages of `fresh` within `limit` octets, those over it): the new mail
    --delete-larger-than deletes unread, and (`fetch.plan`) what --max-size skips."""
    if limit is None:
        return list(fresh), []
    over = [m for m in fresh if (m.size or 0) > limit]
    return [m for m in fresh if (m.size or 0) <= limit], over


def unseen(
    messages: Collection[MessageInfo], recorded: Mapping[str, int | None], *, no_uidl: bool
) -> dict[str, int | None]:
    """UID -> size of every listed message `--mark-seen` records: not recorded, or
    recorded with another size (the UID now names another message)."""
    if no_uidl:
        raise UnavailableError(
            "the server has no UIDL: --mark-seen cannot record which messages are there"
        )
    return {
        m.uid: m.size
        for m in messages
        if m.uid and (m.uid not in recorded or reused_size(m, recorded) is not None)
    }


def reused_size(message: MessageInfo, recorded: Mapping[str, int | None]) -> int | None:
    """The size recorded for this message's UID when it is not this message's size:
    the UID now names another message (`fetch.plan`, `unseen`). None when it is the same
    message, or unknown."""
    size = recorded.get(message.uid) if message.uid else None
    return size if size is not None and message.size not in (None, size) else None
