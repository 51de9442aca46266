"""The multi-line response scanner and its two copiers: the segments it finds (exact
consumption, the terminator only at CRLF "." CRLF, long lines streamed), the un-stuffed
copy (round trips, limits) and the shell's view (dot-stuffed lines as sent, each ending
in LF, CR and LF inside a line escaped, the "." line last and only there)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailcli.pop3.multiline as multiline
from mailcli.errors import ProtocolError, TempFailError
from mailcli.network import dot_stuff
from mailcli.pop3.multiline import (
    ShownLineCopier,
    UnstuffingCopier,
    scan_body,
    unstuff,
)
from tests.servers.pop3messages import MESSAGE

NEXT_REPLY = b"+OK next\r\n"  # a pipelined reply behind the response


def source_of(wire: bytes, buffer_size: int) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(wire), buffer_size=buffer_size)


@contextmanager
def blocks_of(size: int) -> Iterator[None]:
    """Tiny blocks, so that long lines and every split position get exercised."""
    original = multiline.BLOCK_SIZE
    multiline.BLOCK_SIZE = size
    try:
        yield
    finally:
        multiline.BLOCK_SIZE = original


def copy(wire: bytes, buffer_size: int, **options: int) -> tuple[bytes, bytes, UnstuffingCopier]:
    source = source_of(wire, buffer_size)
    out = bytearray()
    copier = UnstuffingCopier(source, out.extend, **options)
    copier.run()
    return bytes(out), source.read(), copier


def segments_of(source: io.BufferedReader) -> list[tuple[bytes, bool]]:
    found: list[tuple[bytes, bool]] = []
    scan_body(source, lambda segment, at_line_start: found.append((segment, at_line_start)))
    return found


def show(wire: bytes, buffer_size: int = 8192) -> tuple[bytes, bytes, int]:
    source = source_of(wire, buffer_size)
    out = bytearray()
    lines = ShownLineCopier(source, out.extend).run()
    return bytes(out), source.read(), lines


# -- the scanner --------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(message=MESSAGE, buffer_size=st.integers(1, 64), block=st.integers(2, 50))
def test_segments_are_the_body_as_sent(message: bytes, buffer_size: int, block: int) -> None:
    wire = dot_stuff(message)
    source = source_of(wire + b".\r\n" + NEXT_REPLY, buffer_size)
    with blocks_of(block):
        segments = segments_of(source)
    assert b"".join(segment for segment, _ in segments) == wire
    assert source.read() == NEXT_REPLY
    previous = b"\r\n"
    for segment, at_line_start in segments:
        assert segment  # nothing empty
        assert at_line_start == previous.endswith(b"\r\n")
        # complete lines, or a long line's head: no CRLF in it, longer than a block
        # with its held-back CR
        assert segment.endswith(b"\r\n") or (b"\r\n" not in segment and len(segment) >= block)
        previous = segment


def test_a_response_without_lines_is_no_segment() -> None:
    source = source_of(b".\r\n" + NEXT_REPLY, 64)
    assert segments_of(source) == []
    assert source.read() == NEXT_REPLY


def test_a_long_line_whose_head_ends_in_cr_holds_it_back() -> None:
    # the CR read with the head begins the CRLF before the terminator
    source = source_of(b"abcd\r\n.\r\n", 5)
    with blocks_of(4):
        segments = segments_of(source)
    assert segments == [(b"abcd", True), (b"\r\n", False)]
    assert source.read() == b""


# -- the un-stuffed copy -------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(message=MESSAGE, buffer_size=st.integers(1, 64), block=st.integers(2, 50))
def test_round_trip_at_any_block_boundary(message: bytes, buffer_size: int, block: int) -> None:
    with blocks_of(block):
        out, rest, copier = copy(dot_stuff(message) + b".\r\n" + NEXT_REPLY, buffer_size)
    assert out == message
    assert rest == NEXT_REPLY  # a pipelined reply behind it is left unread
    assert copier.octets == len(message)
    assert copier.lines == message.count(b"\r\n")


@given(MESSAGE)
def test_unstuff_inverts_stuff(message: bytes) -> None:
    assert unstuff(dot_stuff(message)) == message


def test_long_lines_stream() -> None:
    message = b"Subject: x\r\n\r\n" + b"a" * 3_000_000 + b"\r\n.\r\n"
    out, rest, _ = copy(dot_stuff(message) + b".\r\n", 65536)
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
    # Written out, not dot_stuff()ed: a server stuffs only lines that begin after a CRLF.
    out, rest, copier = copy(message + b".\r\n" + NEXT_REPLY, 64)
    assert out == message
    assert rest == NEXT_REPLY
    assert copier.octets == len(message)


# -- the shell's view ----------------------------------------------------------------
def test_dots_stay_stuffed_and_only_the_terminator_is_a_lone_dot() -> None:
    body = b"Subject: x\r\n\r\n.\r\n.x\r\nbare\rCR\r\nbare\nLF\r\nend\r\n"
    out, rest, lines = show(dot_stuff(body) + b".\r\n" + NEXT_REPLY)
    assert out == b"Subject: x\n\n..\n..x\nbare\\rCR\nbare\\nLF\nend\n.\n"
    assert rest == NEXT_REPLY
    assert lines == 8


def test_an_empty_response_is_its_dot() -> None:
    assert show(b".\r\n+OK\r\n") == (b".\n", b"+OK\r\n", 1)


def test_a_hang_up_before_the_terminator_is_75() -> None:
    with pytest.raises(TempFailError):
        show(b"line\r\n..\r\n")


@settings(max_examples=400, deadline=None)
@given(message=MESSAGE, buffer_size=st.integers(1, 64), block=st.integers(2, 50))
def test_any_message_shown_at_any_block_boundary(
    message: bytes, buffer_size: int, block: int
) -> None:
    wire = dot_stuff(message)
    with blocks_of(block):
        out, rest, lines = show(wire + b".\r\n" + NEXT_REPLY, buffer_size)
    wire_lines = wire.removesuffix(b"\r\n").split(b"\r\n") if wire else []
    expected = [line.replace(b"\r", b"\\r").replace(b"\n", b"\\n") for line in wire_lines]
    assert out == b"".join(line + b"\n" for line in [*expected, b"."])
    assert rest == NEXT_REPLY  # a pipelined reply behind it is left unread
    assert b"\r" not in out
    assert out.split(b"\n").count(b".") == 1
    assert lines == len(wire_lines) + 1
