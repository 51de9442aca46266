"""`mailcli fetch`: new POP3 mail into Maildir, mbox or an MDA, exactly once.

The durability contract
=======================
A message is DELEted on the server only after it is durably in the destination AND its
UID is durably recorded in the fetch state. After `kill -9` at any instant (a second kill
during the recovery included), a rerun leaves every message of the server in the
destination exactly once, byte-complete; recovery removes only bytes it can prove this
mailcli wrote for an unrecorded batch of the same file, never anyone else's mail.

How each step keeps it, batch by batch (a batch is up to 256 messages, or
`MAILCLI_FETCH_BATCH`; one for an MDA):

1. **Deliver** the batch: each message streams from the socket into the destination
   (Maildir `tmp/`, the mbox's private batch file, or the MDA's spool file). A message is
   complete only at the CRLF "." CRLF terminator (`multiline`). A message cut short
   (network, disk, signal) is abandoned: its tmp file removed, its bytes cut from the
   batch file (never from the mbox), its MDA spool file dropped (no MDA started).
2. **Sync** once for the batch: Maildir: syncfs(2) on the file system, then rename each
   file into `new/`, then fsync `new/`; mbox: fsync the batch file, write the journal
   (durably), append the batch to the mbox, fsync it. (One sync per batch instead of one
   fsync per message is where the time goes; the guarantee is the same, because nothing
   is recorded or deleted before the sync.)
3. **Record** the batch's UIDs: one appended line, fsynced (`fetch.state`); a torn line is
   ignored on reading, so a batch is recorded whole or not at all.
4. **DELE** the batch (with `--delete`); the server deletes at QUIT, which comes last.
   The state is compacted to what the server still has only after QUIT answered +OK.
   A UID the server lists for two messages is never deleted as "already delivered".

A message is "already delivered" when its UID is recorded with the size LIST gives it
now (`fetch.state`; what a run fetches, skips or deletes unread is `fetch.plan`). A
recorded UID whose message now has another size names another message: a server reused
the UID of one it deleted (RFC 1939 forbids it; some servers do it after rebuilding a
mailbox). mpop and getmail key by UID alone and take the new message for the old one:
never fetched, and deleted unread by `--delete`. fetch treats it as new instead:
fetched, recorded with its size, deleted (with `--delete`) only after that, and the run
warns about it. A message whose size the server merely recounted is fetched once more:
a duplicate is recoverable, a lost message is not.

The window between 2 and 3 (delivered, not recorded) is closed differently per kind:
- Maildir file names carry a key derived from the mailbox and the UID
  (`fetch.destination.message_key`). At start, a message whose key is already in `new/` or `cur/`
  but whose UID is not recorded is recorded instead of fetched again.
- mbox: the journal (`mboxjournal`) is tied to the mbox file (path, device, inode) and
  names each message's offsets and sha256. At start, the account's journal is settled
  on its own file (whatever this run's destination): messages found whole are recorded,
  bytes after them are cut only when they are exactly what the batch was writing, mail
  another program appended is kept, and anything unprovable stops the run (73) with the
  file untouched. Another account's journal on the same mbox makes this run wait (75).
- MDA: a batch is one message, spooled whole into an unnamed private file before the
  MDA starts on it (so the MDA never sees part of a message), recorded as soon as the
  MDA exits 0; a crash after the MDA started and before its exit is recorded can
  deliver that one message twice: an MDA cannot tell us what it already has.

`--dry-run` takes no lock, runs no recovery and writes nothing: it plans from the state
as it is and a read-only look at the destination.

Deletion after a crash: DELEs not followed by a successful QUIT are undone by the server;
the messages stay recorded, and the next `--delete` run deletes them (it deletes every
recorded message the server still has). Interrupted by SIGINT/SIGTERM, fetch abandons the
message in flight, makes the completed ones durable and recorded, and closes the
connection without QUIT, so no DELE of this run takes effect.

Speed: with PIPELINING, RETRs are kept in flight (64, refilled half a window at a time in
one write) and each reply is parsed in large blocks as it arrives (`multiline`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mailcli.auth.credential import Credential
from mailcli.endpoint import Endpoint
from mailcli.errors import MailcliError
from mailcli.fetch.destination import Destination, MessageRefused, MessageWriter, message_key
from mailcli.fetch.mailbox import Mailbox, v1_state_name
from mailcli.fetch.open import LmtpSettings, open_destination
from mailcli.fetch.plan import plan
from mailcli.fetch.received import ReceivedHeader
from mailcli.fetch.retention import expired, unseen
from mailcli.fetch.state import Recorded, UidState
from mailcli.fetch.summary import FetchOptions, FetchSummary, Progress
from mailcli.fsutil import FileLock, write_error
from mailcli.pop3.commands import MessageInfo, list_messages
from mailcli.pop3.multiline import size_difference
from mailcli.pop3.session import Pop3Session
from mailcli.transcript import Transcript

if TYPE_CHECKING:
    from mailcli.fetch.filter import HeaderFilter

# The CLI and the trail import the run's records from here (they live in fetch.summary).
__all__ = ["FetchOptions", "FetchSummary", "Fetcher", "Progress", "fetch_mail"]


def fetch_mail(
    endpoint: Endpoint,
    destination: str,
    options: FetchOptions,
    *,
    credential: Credential,
    transcript: Transcript,
    progress: Progress,
    state_dir: Path,
) -> tuple[FetchSummary, str]:
    """One fetch run, under the mailbox's lock: (summary, the destination's description).
    A mailbox is account, user and canonical host, never port or TLS (`fetch.mailbox`)."""
    mailbox = Mailbox(endpoint.account, endpoint.user, endpoint.host)
    name = mailbox.identity
    v1_name = v1_state_name(endpoint.account, endpoint.user, endpoint.host, endpoint.port)
    lock: contextlib.AbstractContextManager[object] = (
        contextlib.nullcontext()  # a dry run writes nothing, not even a lock file
        if options.dry_run
        else FileLock(state_dir / f"{mailbox.file_stem}.lock", "fetch for this account")
    )
    with lock:
        store = open_destination(
            destination,
            journal=state_dir / f"{mailbox.file_stem}.journal",
            read_only=options.dry_run,
            lock_wait=endpoint.timeout,  # another program's mbox locks: as long as a server
            lmtp=LmtpSettings(options.lmtp_rcpt or endpoint.user, transcript, endpoint.timeout),
        )
        try:
            with Pop3Session(endpoint, credential=credential, transcript=transcript) as pop:
                state = UidState(
                    state_dir,
                    mailbox,
                    destination=store.description,
                    v1_name=v1_name,
                    read_only=options.dry_run,
                )
                summary = Fetcher(pop, store, state, name, options, progress).run()
        except BaseException:
            # A lock that cannot be let go (an mbox dot-lock on a failing disk) is an
            # error of its own, but never one that hides the error in flight.
            with contextlib.suppress(MailcliError, OSError):
                store.close()
            raise
        store.close()
    return summary, store.description


@dataclass
class Fetcher:
    pop: Pop3Session
    destination: Destination
    state: UidState
    server_id: str
    options: FetchOptions
    progress: Progress = field(default_factory=Progress)
    summary: FetchSummary = field(default_factory=FetchSummary)
    received: ReceivedHeader | None = None  # the line each message gets first, if any
    gone: set[str] = field(default_factory=set)  # UIDs DELEted by this run (gone at QUIT)

    def run(self) -> FetchSummary:
        started = time.monotonic()
        messages = list_messages(self.pop)
        self.summary.no_uidl = any(m.uid is None for m in messages)
        recorded = self._recorded(messages)
        new, already = self._plan(messages, recorded)
        self._note_moved_destination(new, already)
        if self.options.mark_seen:
            return self._mark_seen(messages, recorded)
        days, delete = self.options.delete_after, self.options.delete
        due = expired(already, self.state.stored_at, delete=delete, days=days, now=time.time())
        if self.options.dry_run:
            self.summary.planned = len(new)
            self.summary.expiring = len(due)
            return self.summary
        if self.options.header_filter is not None:
            new = self._screen(new, self.options.header_filter)
        self.progress.start(len(new), sum(m.size or 0 for m in new))
        if self.options.received_header:
            self.received = ReceivedHeader(self.pop.endpoint.host, self.pop.endpoint.account)
        self._delete([*self.summary.deleted_unread, *due])
        size = self.destination.batch_size
        for start in range(0, len(new), size):
            self._batch(new[start : start + size])
        self.pop.quit()  # DELEs take effect here; only now may the state forget them
        if not self.summary.no_uidl:
            refused = {m for m, _ in self.summary.refused}  # never recorded as stored
            self._compact(messages, {**recorded, **_sizes(m for m in new if m not in refused)})
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _mark_seen(self, messages: list[MessageInfo], recorded: Recorded) -> FetchSummary:
        """Record every listed UID not recorded yet, in one append (`fetch.retention`)."""
        marking = unseen(messages, recorded, no_uidl=self.summary.no_uidl)
        self.summary.marked = len(marking)
        if not self.options.dry_run:
            self.state.record(marking.items())
            self.pop.quit()
            self._compact(messages, {**recorded, **marking})
        return self.summary

    def _screen(self, new: list[MessageInfo], header_filter: HeaderFilter) -> list[MessageInfo]:
        """The filter's verdicts (`fetch.filter`): what it deletes is DELEted unread now,
        what it skips stays; the messages to download are returned."""
        from mailcli.fetch.filter import screen

        screening = screen(self.pop, new, header_filter)
        self._delete(screening.delete)
        self.summary.filter_skipped = len(screening.skip)
        self.summary.filter_failure = screening.failure
        return screening.deliver

    def _compact(self, messages: list[MessageInfo], recorded: Recorded) -> None:
        """Keep the UIDs that are recorded and still on the server after this QUIT:
        everything this run DELEted is gone."""
        on_server = {m.uid for m in messages if m.uid} - self.gone
        self.state.compact({uid: size for uid, size in recorded.items() if uid in on_server})

    def _recorded(self, messages: list[MessageInfo]) -> Recorded:
        """The recorded UIDs and sizes, after settling what a crash may have left
        unrecorded (a dry run's destination is a `Preview`: it recovers nothing, nothing
        is recorded)."""
        recorded: Recorded = {} if self.summary.no_uidl else self.state.load()
        self.destination.recover(recorded.__contains__)  # even without UIDL: no torn mbox
        if self.summary.no_uidl:
            self.destination.batch_recorded()
            return recorded
        present = self.destination.delivered_keys()
        found = _sizes(
            m
            for m in messages
            if m.uid and m.uid not in recorded and self._delivered_before(m, present)
        )
        if found and not self.options.dry_run:  # delivered before a crash, never recorded
            self.state.record(found.items())  # ... so record it, do not fetch it again
        recorded.update(found)
        self.destination.batch_recorded()  # what recovery found is recorded: drop its journal
        return recorded

    def _delivered_before(self, message: MessageInfo, present: set[str]) -> bool:
        """A Maildir file (or a journal) carries this message's key, made from its UID
        and size. Keys older versions made from the UID alone (and, before that, from
        the host text and port: `fetch.mailbox.v1_state_name`) count only until this
        version has recorded the mailbox: after that, a UID missing from the state was
        forgotten because its message left the server, and a new message under that UID
        is not the old one's file."""
        uid = message.uid or ""
        if message_key(self.server_id, uid, message.size) in present:
            return True
        if not self.state.before_sizes:
            return False
        ids = (self.server_id, *sorted(self.state.legacy_names))
        return any(message_key(server_id, uid) in present for server_id in ids)

    def _note_moved_destination(self, new: list[MessageInfo], already: list[MessageInfo]) -> None:
        """Nothing new, but into another destination than last time: say why."""
        earlier = self.state.previous_destination
        here = self.destination.description
        if new or not already or self.options.everything or self.options.delete:
            return
        if earlier in (None, here):
            return
        self.summary.note = (
            f"nothing new for this mailbox: {len(already)} messages were fetched earlier "
            f"into {earlier}; use --all to fetch them again into {here}"
        )

    def _plan(
        self, messages: list[MessageInfo], recorded: Recorded
    ) -> tuple[list[MessageInfo], list[MessageInfo]]:
        """(messages to fetch, recorded messages still on the server) (`fetch.plan`)."""
        planned = plan(messages, recorded, self.options)
        self.summary.reused = planned.reused
        self.summary.deleted_unread = planned.deleted_unread
        self.summary.skipped = planned.skipped
        return planned.fetch, planned.already

    def _batch(self, batch: list[MessageInfo]) -> None:
        completed: list[MessageInfo] = []
        try:
            self._retrieve(batch, completed)
        except BaseException:
            # Keep what is complete (a signal, a dropped connection, a failing MDA):
            # durable and recorded now, never fetched twice. Then let the error out.
            with contextlib.suppress(MailcliError, OSError):
                self._settle(completed)
            raise
        self._settle(completed)
        if self.options.delete:
            self._delete(completed)

    def _settle(self, completed: list[MessageInfo]) -> None:
        try:
            self.destination.commit()
        except OSError as exc:
            raise write_error(exc, "the message") from exc
        if not self.summary.no_uidl:
            self.state.record(_sizes(completed).items())
        self.destination.batch_recorded()

    def _retrieve(self, batch: list[MessageInfo], completed: list[MessageInfo]) -> None:
        """RETR each, pipelined (`Pop3Session.pipelined`); a message is complete once
        its body is in the destination."""
        retrieving = self.pop.pipelined("RETR", [m.number for m in batch])
        for info, _ in zip(batch, retrieving, strict=True):
            try:
                self._receive(info)
            except MessageRefused as exc:  # this one stays, unrecorded; the rest go on
                self.summary.refused.append((info, exc.message))
                continue
            completed.append(info)

    def _receive(self, info: MessageInfo) -> None:
        """The body of a RETR whose +OK was read, streamed into the destination."""
        key = message_key(self.server_id, info.uid or f"#{info.number}", info.size)
        try:
            writer = self.destination.open_message(key)
        except OSError as exc:
            raise write_error(exc, "the message") from exc
        size, guarded = info.size or 0, _Guarded(writer)
        try:
            if self.received is not None:  # not the server's bytes: not counted as them
                guarded.write(self.received.line(info.uid))
            body = self.pop.read_body(guarded.write, limit=2 * size + 1024 * 1024)
            try:
                writer.finish()
            except OSError as exc:  # the last buffered bytes hit a full disk
                raise write_error(exc, "the message") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                writer.abandon()
            raise
        self.pop.transcript.data_summary("recv", body.lines, body.octets)
        if info.size is not None and body.octets != info.size:
            self.pop.transcript.info(size_difference(info.number, info.size, body.octets))
        self.summary.fetched += 1
        self.summary.octets += body.octets
        self.progress.message(body.octets)

    def _delete(self, messages: Sequence[MessageInfo]) -> None:
        """DELE, pipelined; the server deletes at QUIT."""
        for _ in self.pop.pipelined("DELE", [m.number for m in messages]):
            self.summary.deleted += 1
        self.gone.update(m.uid for m in messages if m.uid)


def _sizes(messages: Iterable[MessageInfo]) -> Recorded:
    """UID -> LIST size, for the messages that have a UID."""
    return {m.uid: m.size for m in messages if m.uid}


class _Guarded:
    """A destination writer whose OSErrors become local errors (73/74), so that the
    POP3 layer does not mistake a full disk for a network failure."""

    def __init__(self, writer: MessageWriter) -> None:
        self.writer = writer

    def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
        except OSError as exc:
            raise write_error(exc, "the message") from exc
