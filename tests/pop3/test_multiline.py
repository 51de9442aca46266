"""The streamed multi-line reader: un-stuffing round-trips, exact consumption, limits."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailcli.pop3.multiline as multiline
from mailcli.errors import ProtocolError, TempFailError
from mailcli.pop3.multiline import MultilineCopier, stuff, unstuff
from tests.servers.pop3messages import MESSAGE


def copy(wire: bytes, buffer_size: int, **options: int) -> tuple[bytes, bytes, MultilineCopier]:
    source = io.BufferedReader(io.BytesIO(wire), buffer_size=buffer_size)
    out = bytearray()
    copier = MultilineCopier(source, out.extend, **options)
    copier.run()
    return bytes(out), source.read(), copier


@settings(max_examples=400, deadline=None)
@given(message=MESSAGE, buffer_size=st.integers(1, 64), block=st.integers(2, 50))
def test_round_trip_at_any_block_boundary(message: bytes, buffer_size: int, block: int) -> None:
    original = multiline.BLOCK_SIZE
    multiline.BLOCK_SIZE = block  # small blocks: every split position gets exercised
    try:
        out, rest, copier = copy(stuff(message) + b".\r\n+OK next\r\n", buffer_size)
    finally:
        multiline.BLOCK_SIZE = original
    assert out == message
    assert rest == b"+OK next\r\n"  # a pipelined reply behind it is left unread
    assert copier.octets == len(message)
    assert copier.lines == message.count(b"\r\n")


@given(MESSAGE)
def test_unstuff_inverts_stuff(message: bytes) -> None:
    assert unstuff(stuff(message)) == message


def test_long_lines_stream() -> None:
    message = b"Subject: x\r\n\r\n" + b"a" * 3_000_000 + b"\r\n.\r\n"
    out, rest, _ = copy(stuff(message) + b".\r\n", 65536)
    assert out == message and rest == b""


def test_limit_stops_an_endless_response() -> None:
    with pytest.raises(ProtocolError, match="more than 100 octets"):
        copy(b"x" * 1000 + b"\r\n" * 100, 64, limit=100)


def test_end_of_stream_before_terminator_is_tempfail() -> None:
    with pytest.raises(TempFailError, match="closed in the middle"):
        copy(b"Subject: x\r\n\r\nbody\r\n", 64)


def test_a_bare_lf_dot_line_inside_a_crlf_message_is_data() -> None:
    """Once "\\n.\\n" ended the message early; only CRLF "." CRLF ends it."""
    message = b"Subject: x\r\n\r\nline\n.\nmore\r\n"
    # Written out, not stuff()ed: a server stuffs only lines that begin after a CRLF.
    out, rest, copier = copy(message + b".\r\n+OK next\r\n", 64)
    assert out == message
    assert rest == b"+OK next\r\n"
    assert copier.octets == len(message)
