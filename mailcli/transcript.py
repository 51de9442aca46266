"""The protocol transcript (`--trace`): one line per protocol line, secrets masked.

Format, telnet-like, one line each on stderr:

    == connected to 127.0.0.1:110
    <- +OK Dovecot ready.
    -> USER alice
    -> PASS ********
    == TLS established: TLSv1.3 TLS_AES_256_GCM_SHA384
    ~> STAT
    <~ +OK 3 2086

`<-` received, `->` sent, `<~`/`~>` the same inside TLS, `==` information. Lines that
go out in one write (SMTP PIPELINING: MAIL, the RCPTs and DATA; the final dot and QUIT)
follow one `== pipelined: N lines in one write`; their replies follow them. Masking is
not optional: PASS arguments, APOP digests, AUTH initial responses and every client
line of a SASL exchange (until the server's final reply) are replaced by `********`.
Message bodies are summarised unless `show_data` is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

MASK = "********"
_PREFIX_BY_DIRECTION = {"recv": ("<-", "<~"), "send": ("->", "~>"), "info": ("==", "==")}


class TraceLine(NamedTuple):
    """One recorded line: direction ("recv", "send", "info"), text, TLS state, seconds.
    A NamedTuple: built only when tracing, it costs no dataclass at import (start-up)."""

    direction: str
    text: str
    tls: bool
    elapsed: float

    def render(self, *, show_time: bool = False) -> str:
        arrow = _PREFIX_BY_DIRECTION[self.direction][self.tls]
        stamp = f"{self.elapsed:8.3f} " if show_time else ""
        return f"{stamp}{arrow} {self.text}"


class SecretMasker:
    """Tracks a POP3 or SMTP conversation to know which client lines carry secrets."""

    def __init__(self) -> None:
        self.in_sasl = False

    def sent(self, text: str) -> str:
        if self.in_sasl:
            # "*" cancels a SASL exchange and is no secret; everything else is.
            return text if text == "*" else MASK
        verb, _, rest = text.partition(" ")
        verb = verb.upper()
        if verb == "PASS":
            return f"{verb} {MASK}"
        if verb == "APOP":
            user = rest.partition(" ")[0]
            return f"{verb} {user} {MASK}"
        if verb == "AUTH" and rest:
            self.in_sasl = True
            mechanism, _, initial = rest.partition(" ")
            return f"{verb} {mechanism} {MASK}" if initial else text
        return text

    def received(self, text: str) -> None:
        if self.in_sasl and not _is_sasl_continuation(text):
            self.in_sasl = False


def _is_sasl_continuation(text: str) -> bool:
    """SMTP continues with 334; POP3 with "+ " or a bare "+" (but "+OK" ends it)."""
    return text.startswith("334") or text == "+" or text.startswith("+ ")


def _decode(line: bytes | str) -> str:
    if isinstance(line, bytes):
        line = line.decode("utf-8", "backslashreplace")
    return line.rstrip("\r\n")


class Transcript:
    """Receives every protocol line; renders it to `sink` when tracing is on.

    Protocol code calls it unconditionally; with no sink it does nothing, so the
    hot paths can check `enabled` to skip even the decoding.
    """

    def __init__(
        self,
        sink: Callable[[str], None] | None = None,
        *,
        show_data: bool = False,
        show_time: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.show_data = show_data
        self.show_time = show_time
        self.tls = False  # display only (the arrows): decisions read the session's tls_active
        self._clock = clock
        self._start = clock()
        self._masker = SecretMasker()

    @property
    def enabled(self) -> bool:
        return self.sink is not None

    def received(self, line: bytes | str) -> None:
        text = _decode(line)
        self._masker.received(text)
        self._emit("recv", text)

    def sent(self, line: bytes | str) -> None:
        self._emit("send", self._masker.sent(_decode(line)))

    def info(self, text: str) -> None:
        self._emit("info", text)

    def data_summary(self, direction: str, lines: int, octets: int) -> None:
        """Summarise a message body ("send" or "recv") instead of dumping it."""
        self._emit(direction, f"[message: {lines} lines, {octets} octets]")

    def data_line(self, direction: str, line: bytes | str) -> None:
        """A body line, shown only with show_data; never masked (it is the message)."""
        if self.show_data:
            self._emit(direction, _decode(line))

    def _emit(self, direction: str, text: str) -> None:
        if self.sink is None:
            return
        line = TraceLine(direction, text, self.tls, self._clock() - self._start)
        self.sink(line.render(show_time=self.show_time))
