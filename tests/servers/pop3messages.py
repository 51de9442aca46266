"""Hypothesis strategies for what a POP3 server sends as a message, for the property
tests of the multi-line response scanner and its copiers (mailcli.pop3.multiline)."""

from __future__ import annotations

from hypothesis import strategies as st

# Pieces of a message, CRLF lines or not: bare LF and bare CR, dot lines after each kind
# of line end, lone dots, ".\r\n" at the very start. Only CRLF "." CRLF ends a response.
FRAGMENT = st.one_of(
    st.sampled_from(
        [
            b".",
            b"..",
            b".x",
            b"..x",
            b"\r",
            b"\n",
            b"\r\n",
            b".\r",
            b".\r\n",
            b"\n.\n",
            b"\r.\n",
            b"\n.\r\n",
            b"\r\n.\r\n",
            b"\n..x",
            b"\r\n..\r\n",
            b"From x",
        ]
    ),
    st.binary(max_size=40),
)


def _as_message(fragments: list[bytes]) -> bytes:
    """A server ends every message with CRLF before the terminator (RFC 1939, 3)."""
    data = b"".join(fragments)
    return data if not data or data.endswith(b"\r\n") else data + b"\r\n"


MESSAGE = st.lists(FRAGMENT, max_size=30).map(_as_message)
