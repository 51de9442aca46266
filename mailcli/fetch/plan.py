"""Which of the messages a server lists a fetch run downloads, and which it leaves.

Decided from the listing and the fetch state alone, before any RETR: a message is new
when its UID is not recorded, or recorded with another LIST size (the UID now names
another message: why that is "new", not "already delivered", is in `fetch.run`'s
contract); `--all` makes every message new. Of the new ones, those over
`--delete-larger-than` are deleted unread (`fetch.retention`), those over `--max-size`
are skipped (left on the server), and `--limit` keeps the first N of the rest. A recorded
message still on the server is "already" delivered, except when its UID is listed for two
messages: neither can be told to be the one delivered, so neither is deleted as such.
Nothing here deletes, records or talks to a server: `fetch.run` acts on the `Plan`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from mailcli.fetch.retention import oversized, reused_size
from mailcli.fetch.state import Recorded
from mailcli.fetch.summary import FetchOptions
from mailcli.pop3.commands import MessageInfo


@dataclass(frozen=True)
class Plan:
    fetch: list[MessageInfo]  # to download, in the server's order
    already: list[MessageInfo]  # recorded and still on the server (retention's to judge)
    reused: list[tuple[MessageInfo, int]]  # (the message now, the size recorded before)
    deleted_unread: list[MessageInfo]  # over --delete-larger-than
    skipped: list[MessageInfo]  # over --max-size


def plan(messages: Sequence[MessageInfo], recorded: Recorded, options: FetchOptions) -> Plan:
    """What to fetch of `messages` (LIST and UIDL), given the UIDs and sizes recorded."""
    reused = [(m, size) for m in messages if (size := reused_size(m, recorded)) is not None]
    reused_numbers = {m.number for m, _ in reused}
    fresh = [
        m
        for m in messages
        if options.everything or m.uid not in recorded or m.number in reused_numbers
    ]
    fresh_numbers = {m.number for m in fresh}
    # A UID listed for two messages (RFC 1939 forbids it) cannot say which of them is
    # the one delivered: neither is deleted as "already delivered".
    shared = {uid for uid, n in Counter(m.uid for m in messages).items() if n > 1}
    already = [
        m
        for m in messages
        if m.uid in recorded and m.uid not in shared and m.number not in fresh_numbers
    ]
    fresh, deleted_unread = oversized(fresh, options.delete_larger_than)
    fresh, skipped = oversized(fresh, options.max_size)
    if options.limit is not None:
        fresh = fresh[: options.limit]
    return Plan(fresh, already, reused, deleted_unread, skipped)
