"""Loopback ports: picking a free one and waiting until a server greets on it.

Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import time
from collections.abc import Callable

HOST = "127.0.0.1"


# Ports are handed out from below the kernel's ephemeral range (32768 and up on Linux,
# where client connections and bind(0) take theirs), one slice per pytest-xdist worker,
# each port once per process: two servers of one test, or of two workers, never get the
# same number, which bind(0) and close could give twice.
_FIRST_PORT, _SLICE = 20000, 3000
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process
    has not handed out before.

    A daemon must be told its number in its config file (Dovecot, Postfix, aiosmtpd 1.4),
    so the port is closed again before the daemon binds it; what remains of that window
    is another program on the machine taking the port meanwhile.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = _FIRST_PORT + (int(worker) % 4 if worker.isdigit() else 0) * _SLICE
    start = random.randrange(_SLICE)
    for step in range(_SLICE):
        port = first + (start + step) % _SLICE
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {first}-{first + _SLICE - 1}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def read_greeting(port: int, *, tls: ssl.SSLContext | None = None, timeout: float = 2.0) -> bytes:
    """Connect to ``port`` (optionally with implicit TLS) and return the first line it sends."""
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        if tls is None:
            return _first_line(raw)
        with tls.wrap_socket(raw, server_hostname=HOST) as wrapped:
            return _first_line(wrapped)


def _first_line(sock: socket.socket) -> bytes:
    """Read up to and including the first LF (greetings are a single short line)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def wait_for_greeting(
    port: int,
    prefix: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    timeout: float = 15.0,
    alive: Callable[[], bool] = lambda: True,
) -> bytes:
    """Poll ``port`` until a greeting starting with ``prefix`` arrives; return it.

    Waiting for the greeting rather than for the port to accept proves the server is really
    serving: Postfix's master accepts connections before it has forked an smtpd. ``alive``
    lets the caller stop early, with a clear error, when the daemon has died.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server for port {port} exited during startup")
        try:
            greeting = read_greeting(port, tls=tls)
        except OSError as error:  # includes ssl.SSLError and refused connections
            last_error = error
        else:
            if greeting.startswith(prefix):
                return greeting
            last_error = RuntimeError(f"unexpected greeting {greeting!r}")
        time.sleep(0.05)
    raise TimeoutError(f"no {prefix!r} greeting on port {port}: {last_error}")
