"""The deadline of one token-endpoint request (`tokens.post_form`): the whole request,
connect to the answer's last byte, within a number of seconds however the endpoint
dribbles its answer. Each read's own timeout cannot bound that: an endpoint sending a
byte a second never lets a single read time out.

Imported with urllib, only when a request is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailcli.errors import TempFailError

if TYPE_CHECKING:
    import urllib.request


class Watchdog:
    """Shuts down the request's socket when `seconds` have passed: a read blocked on an
    endpoint that dribbles wakes with EOF, and `check` turns that into 75."""

    def __init__(self, seconds: float) -> None:
        import threading

        self.seconds = seconds
        self.expired = threading.Event()
        self._connections: list[object] = []
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener whose HTTP(S) connections this watchdog can cut."""
        import http.client
        import urllib.request

        def watched(kind: type[http.client.HTTPConnection]) -> Any:
            def connection(host: str, **options: Any) -> http.client.HTTPConnection:
                made = kind(host, **options)
                self._connections.append(made)
                return made

            return connection

        class Plain(urllib.request.HTTPHandler):
            def http_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(watched(http.client.HTTPConnection), req)

        class Secure(urllib.request.HTTPSHandler):
            def https_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(
                    watched(http.client.HTTPSConnection),
                    req,
                    context=self._context,  # type: ignore[attr-defined]
                )

        return urllib.request.build_opener(Plain, Secure)

    def _cut(self) -> None:
        import contextlib
        import socket

        self.expired.set()
        for connection in self._connections:
            sock = getattr(connection, "sock", None)
            if isinstance(sock, socket.socket):  # the base class's: not SSLSocket.shutdown
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def check(self, host: str) -> None:
        """75 when the deadline cut the request (whatever error that caused)."""
        if self.expired.is_set():
            raise TempFailError(
                f"the OAuth2 endpoint {host} is too slow: no complete answer within "
                f"{self.seconds:g} s",
                hint="try again later; mailcli keeps the stored tokens",
            )
