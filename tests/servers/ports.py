"""Loopback ports: picking a free one and waiting until a server greets on it.

Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Binding port 0 and closing leaves a tiny window in which another process could take the
    port; on a test machine that is acceptable, and it is the only option for daemons that
    must be told a number in their config file (Dovecot, Postfix, aiosmtpd 1.4).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


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
