"""The fetch case of the crash-point enumeration: a mailbox on the test Dovecot with
MESSAGES numbered messages, a destination seeded with foreign mail, and the invariants
checked after a run completed (`check`, `lost_by_server`, `refused_to_guess`). Shared by
the crash-point and the race tests."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests import crashpoints as cp
from tests.servers.dovecot import Dovecot
from tests.servers.dovecot_sessions import wait_for_sessions

MESSAGES = 12
BATCH = "4"
_users = itertools.count(1)
# Cases run side by side (cp.map_cases); adding a Dovecot user also rewrites Postfix's
# mailbox map when Postfix runs, which is not safe to do twice at once.
adding_users = threading.Lock()


def server_message(number: int) -> bytes:
    """What the server holds (LF here; Dovecot sends CRLF): a From_ line to quote, a
    dot line to stuff; sizes from 0.1 to 20 KiB, so that buffered writes flush inside a
    batch and a batch fetched again is not as long as the part a crash left."""
    padding = "".join(f"line {line} of {number}\n" for line in range(number * 137 % 1200))
    return (
        f"From: s@example.test\nSubject: crash {number}\nMessage-ID: <c{number}@example.test>\n"
        f"\nbody {number}\nFrom the start of a line\n.a dot line\n>From quoted\n{padding}"
        f"end {number}\n"
    ).encode()


def foreign_message(tag: str) -> bytes:
    return f"Subject: foreign {tag}\n\nnot from this server ({tag})\nFrom here too\n".encode()


def mbox_entry(body: bytes) -> bytes:
    quoted = re.sub(rb"(?m)^(>*From )", rb">\1", body)
    return b"From foreign@example.test Thu Jan  1 00:00:00 2025\n" + quoted + b"\n"


def mbox_messages(data: bytes) -> list[bytes]:
    """Split an mboxrd file into message bodies (From_ line dropped, quoting undone)."""
    parts = re.split(rb"(?:^|\n\n)From [^\n]*\n", data)
    if parts and parts[0] == b"":
        parts = parts[1:]
    elif parts:  # bytes before the first From_ line: not a message at all
        parts[0] = b"<<garbage before the first From_ line>>" + parts[0]
    bodies = [part + b"\n" if not part.endswith(b"\n") else part for part in parts]
    if bodies:  # the last message keeps its separator line
        bodies[-1] = bodies[-1][:-1] if bodies[-1].endswith(b"\n\n") else bodies[-1]
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", body) for body in bodies]


@dataclass
class Case:
    """One crash point's world: a fresh Dovecot user with MESSAGES messages, a private
    HOME, a destination pre-seeded with foreign mail."""

    dovecot: Dovecot
    root: Path
    kind: str
    delete: bool

    def __post_init__(self) -> None:
        self.user = f"cp{next(_users)}"
        self.dovecot.add_user(self.user, "pw")
        for number in range(MESSAGES):
            self.dovecot.drop_message(self.user, server_message(number))
        self.root.mkdir(parents=True)
        self.env = cp.base_env(self.root, MAILCLI_PASSWORD="pw", MAILCLI_FETCH_BATCH=BATCH)
        self.dest = self.root / "dest"
        self.foreign = [foreign_message(f"before {n}") for n in range(2)]
        self.busy: dict[Path, bytes] = {}  # another program's files in tmp/
        self._seed()

    def _seed(self) -> None:
        if self.kind == "mbox":
            self.dest.write_bytes(b"".join(mbox_entry(m) for m in self.foreign))
            return
        for sub in ("tmp", "new", "cur"):
            (self.dest / sub).mkdir(parents=True)
        for number, data in enumerate(self.foreign):
            (self.dest / "cur" / f"1.foreign{number}.host:2,S").write_bytes(data)

    @property
    def spec(self) -> str:
        if self.kind == "mda":  # atomic per message, as a real MDA would be
            return f"mda:f=$(mktemp {self.dest}/tmp/m.XXXXXX) && cat > $f && mv $f {self.dest}/new/"
        return f"{self.kind}:{self.dest}"

    @property
    def args(self) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", str(self.dovecot.pop3_port)]
        mode = ["--delete"] if self.delete else []
        return [
            "fetch",
            *mode,
            "--to",
            self.spec,
            *where,
            "--security",
            "none",
            "--user",
            self.user,
        ]

    def append_foreign(self, tag: str) -> None:
        """Someone else delivers while the fetch lies dead (its dot-lock is stale); in a
        Maildir another delivery is also half done (its file in tmp/ must stay as it is)."""
        data = foreign_message(tag)
        self.foreign.append(data)
        if self.kind == "mbox":
            with self.dest.open("ab") as handle:
                handle.write(mbox_entry(data))
            return
        (self.dest / "new" / f"2.foreign-{tag}.host").write_bytes(data)
        busy = self.dest / "tmp" / f"3.foreign-{tag}.host"
        busy.write_bytes(data[:20])
        self.busy[busy] = data[:20]

    def in_flight(self) -> bool:
        """The killed run left a batch unfinished: an mbox journal or batch file, or a
        file of ours in the Maildir's tmp/."""
        state = self.root / ".local" / "state" / "mailcli" / "fetch"
        if self.kind == "mbox":
            names = [p.name for p in state.iterdir()] if state.is_dir() else []
            return any("journal" in name or "batch" in name for name in names)
        return any(p not in self.busy for p in (self.dest / "tmp").iterdir())

    def delivered(self) -> list[bytes]:
        if self.kind == "mbox":
            return mbox_messages(self.dest.read_bytes())
        return [
            p.read_bytes() for sub in ("new", "cur") for p in sorted((self.dest / sub).iterdir())
        ]

    def on_server(self) -> list[bytes]:
        """The server's Maildir, read once no Dovecot session of the user works on it (a
        session whose fetch was killed right after the login goes on moving new/ to cur/)."""
        wait_for_sessions(self.dovecot, self.user)
        box = self.dovecot.maildir(self.user)
        return [p.read_bytes() for sub in ("new", "cur") for p in (box / sub).iterdir()]


def check(case: Case, crashes: int) -> list[str]:
    """The invariants after the run that completed; [] when all hold."""
    problems = []
    got = Counter(case.delivered())
    expected = {server_message(n) for n in range(MESSAGES)}
    for data in case.foreign:
        if got[data] != 1:
            problems.append(f"foreign message seen {got[data]} times: {data[:30]!r}")
    problems += [
        f"another program's {p.name} in tmp/ touched"
        for p, data in case.busy.items()
        if not p.exists() or p.read_bytes() != data
    ]
    stray = [d for d in got if d not in expected and d not in case.foreign]
    if stray:
        problems.append(f"{len(stray)} truncated or foreign-bytes message(s): {stray[0][:60]!r}")
    counts = [got[m] for m in expected]
    # An MDA cannot tell what it already has, nor can an LMTP server: one duplicate per
    # crash is documented (delivered, not yet recorded).
    extra = crashes if case.kind in ("mda", "lmtp") else 0
    if min(counts) < 1 or sum(counts) > MESSAGES + extra or max(counts) > 1 + extra:
        problems.append(f"server messages delivered {sorted(counts)} times")
    left = len(case.on_server())
    if left != (0 if case.delete else MESSAGES):
        problems.append(f"{left} message(s) left on the server")
    return problems


def lost_by_server(case: Case) -> list[str]:
    """The server deleted only what is in the destination."""
    have = set(case.delivered())
    gone = {server_message(n) for n in range(MESSAGES)} - set(case.on_server())
    return [f"deleted on the server but not delivered: {m[:40]!r}" for m in gone - have]


def refused_to_guess(case: Case, final: cp.Run) -> bool:
    """An mbox recovery that cannot prove which bytes are its own leaves the file as it
    is and says so, naming it (documented exit, not 70): then every foreign message
    must still be there, whole."""
    if case.kind != "mbox" or final.code not in cp.DOCUMENTED_EXITS:
        return False
    named = str(case.dest).encode() in final.stderr
    got = Counter(case.delivered())
    return named and all(got[data] == 1 for data in case.foreign)


def after_recovery(case: Case, second: cp.Run, doubles: list[bool]) -> list[str]:
    """What a crashed fetch must come to after its recovery run `second` (itself perhaps
    killed, counted in `doubles`): that run's exit documented, nothing lost on the
    server, a run to completion (or an mbox left as it is, `refused_to_guess`), then a
    run that fetches nothing, and every invariant (`check`)."""
    doubles.append(second.killed)
    problems = cp.exit_problem("recovery run", second, sorted(cp.DOCUMENTED_EXITS))
    problems += lost_by_server(case)
    final = cp.run([*case.args, "--json"], case.env)
    if final.code != 0 and refused_to_guess(case, final):
        return problems + lost_by_server(case)  # left for the user, foreign bytes kept
    if final.code != 0:
        return problems + cp.exit_problem("completion run", final)
    problems += fetches_nothing(case, case.args)
    return problems + check(case, crashes=1 + second.killed)


def fetches_nothing(case: Case, args: list[str]) -> list[str]:
    """A run of `args` after one that completed: it must exit 0 having fetched nothing."""
    again = cp.run([*args, "--json"], case.env)
    if again.code != 0 or json.loads(again.stdout)["fetched"] != 0:
        return [f"the next run: exit {again.code}, {again.stdout[:80]!r}"]
    return []


class LmtpCase(Case):
    """The LMTP kind (`kind` "lmtp"): the case's mail goes through the server's own LMTP
    (its unix socket) into another user's Maildir there, seeded with foreign mail; what
    is delivered is read back without the Return-Path and Delivered-To lines the LMTP
    server puts on top. `dovecot` must serve LMTP (tests.servers.lmtp.LmtpDovecot)."""

    def _seed(self) -> None:
        self.target = f"{self.user}t"
        self.dovecot.add_user(self.target, "pw")
        self.dest = self.dovecot.maildir(self.target)
        for data in self.foreign:
            self.dovecot.drop_message(self.target, data)

    @property
    def spec(self) -> str:
        return f"lmtp:{self.dovecot.root / 'run' / 'lmtp'}"

    @property
    def args(self) -> list[str]:
        return [*super().args, "--lmtp-rcpt", self.target]

    def append_foreign(self, tag: str) -> None:
        data = foreign_message(tag)
        self.foreign.append(data)
        self.dovecot.drop_message(self.target, data)

    def in_flight(self) -> bool:
        """Nothing of a killed run stays half done: the server discards an unfinished
        DATA, and the spool file has no name."""
        return False

    def delivered(self) -> list[bytes]:
        from tests.servers.lmtp import stored_message

        return [stored_message(data) for data in super().delivered()]


# ---- retention: a fetch state from an older version, or aged by days --------------------

DAY = 86400


def state_file(home: Path) -> Path:
    """The one fetch state file under `home` (a test's HOME, a case's root)."""
    (path,) = (home / ".local" / "state" / "mailcli" / "fetch").glob("*.uids")
    return path


def age_records(home: Path, days: float) -> None:
    """Every UID recorded so far was stored `days` earlier than its file says."""
    path = state_file(home)
    shift = int(days * DAY)
    path.write_text(re.sub(r"@([0-9]+)", lambda m: f"@{int(m[1]) - shift}", path.read_text()))


def rewrite_state(case: Case, *, version: int = 4, age_days: float = 0) -> None:
    """Turn the case's fetch state into version 3 (no times) or 2 (no sizes either), as
    an older mailcli wrote it, or keep version 4 and make every record `age_days` older."""
    age_records(case.root, age_days)
    path = state_file(case.root)
    text = path.read_text()
    if version < 4:  # "@" in a UID is escaped only from version 4 on
        text = re.sub(r"@[0-9]+", "", text).replace("%40", "@")
        text = text.replace("fetch state v4 ", f"fetch state v{version} ", 1)
    if version < 3:
        text = re.sub(r"#[0-9]+", "", text)
    path.write_text(text)
