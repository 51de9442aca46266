"""How many connections the audit keeps open to the audited server at once.

One `ConnectionLimiter` is shared by every probe of an audit (and by the inner
connections of a probe that runs several at once): `RawConnection.open` takes a slot
before it connects and gives it back on close, so no probe can connect around it. Stock
servers refuse, or greet late, beyond a few connections from one client (Exim's
smtp_accept_max, OpenSMTPD's delayed greeting, Courier's MAXPERIP=4); an audit that
overruns them turns their limits into findings that change from run to run.
"""

from __future__ import annotations

import threading

DEFAULT_CONNECTIONS = 2


class ConnectionLimiter:
    """At most `slots` connections held at a time; `acquire` blocks until one is free."""

    def __init__(self, slots: int = DEFAULT_CONNECTIONS) -> None:
        if slots < 1:
            raise ValueError("a connection limit is at least 1")
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._held = 0
        self.most_held = 0  # the largest number held at once: what the tests check

    def acquire(self) -> None:
        self._free.acquire()
        with self._lock:
            self._held += 1
            self.most_held = max(self.most_held, self._held)

    def release(self) -> None:
        with self._lock:
            self._held -= 1
        self._free.release()


# Probes run outside an audit (tests, a single probe) share this one.
SHARED_LIMITER = ConnectionLimiter()
