"""The crash harness (tests/fetchcases.py) itself: it reads the POP3 server's Maildir only
once Dovecot is done with it.

A fetch killed at its first write after the login (a class boundary of every fetch
enumeration) leaves Dovecot's pop3 process syncing that Maildir, new/ into cur/
(tests/servers/dovecot_sessions.py); the harness's check right after the kill read it
meanwhile and, by the machine's speed, found a file gone from new/. Here Dovecot's own
lock holds that session still, so the order of events is the test's, not the machine's.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from tests import crashpoints as cp
from tests.fetchcases import MESSAGES, Case, adding_users, lost_by_server, server_message
from tests.servers import require
from tests.servers.dovecot import Dovecot
from tests.servers.dovecot_sessions import sessions, uidlist_locked, wait_for_sessions


class Reader(threading.Thread):
    """What the harness reads after the kill, and whether the session was still running
    when it had read it."""

    def __init__(self, case: Case, session: int) -> None:
        super().__init__()
        self.case, self.session = case, session
        self.lost: list[str] | None = None
        self.on_server: list[bytes] = []
        self.session_ran = True

    def run(self) -> None:
        self.lost = lost_by_server(self.case)
        self.on_server = self.case.on_server()
        self.session_ran = self.session in sessions(self.case.dovecot, self.case.user)


def waits_for_dovecot(thread: threading.Thread) -> bool:
    """`thread` is inside `wait_for_sessions` now."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code is wait_for_sessions.__code__:
            return True
        frame = frame.f_back
    return False


def first_point_after_the_login(dovecot: Dovecot, root: Path) -> cp.CrashPoint:
    with adding_users:
        probe = Case(dovecot, root, "maildir", True)
    counted, points = cp.count(probe.args, probe.env, root / "count.log")
    assert counted.code == 0, counted.stderr
    login = next(n for n, point in enumerate(points) if '"PASS ' in point.label)
    return points[login + 1]


def test_the_servers_maildir_is_read_only_once_the_killed_fetchs_session_is_over(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    require("strace")
    point = first_point_after_the_login(dovecot, tmp_path / "count")
    with adding_users:
        case = Case(dovecot, tmp_path / "case", "maildir", True)
    maildir = dovecot.maildir(case.user)

    with uidlist_locked(maildir):
        assert cp.run(case.args, case.env, point=point).killed
        (session,) = sessions(dovecot, case.user)  # answered the login, waits for the lock
        reader = Reader(case, session)
        reader.start()
        while reader.is_alive() and not waits_for_dovecot(reader):
            time.sleep(0.01)
    reader.join()

    assert not reader.session_ran, "read while Dovecot's session still worked on the Maildir"
    assert reader.lost == []
    assert sorted(reader.on_server) == sorted(server_message(n) for n in range(MESSAGES))
    assert list((maildir / "new").iterdir()) == []  # what the session did before it ended
