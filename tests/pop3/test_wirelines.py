"""`shell`'s view of a multi-line reply: dot-stuffed lines as sent, each ending in LF,
CR and LF inside a line escaped, the "." line last and only there; exact consumption."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailcli.pop3.wirelines as wirelines
from mailcli.errors import TempFailError
from mailcli.pop3.multiline import stuff
from mailcli.pop3.wirelines import WireLineCopier
from tests.servers.pop3messages import MESSAGE


def show(wire: bytes, buffer_size: int = 8192) -> tuple[bytes, bytes, int]:
    source = io.BufferedReader(io.BytesIO(wire), buffer_size=buffer_size)
    out = bytearray()
    lines = WireLineCopier(source, out.extend).run()
    return bytes(out), source.read(), lines


def test_dots_stay_stuffed_and_only_the_terminator_is_a_lone_dot() -> None:
    body = b"Subject: x\r\n\r\n.\r\n.x\r\nbare\rCR\r\nbare\nLF\r\nend\r\n"
    out, rest, lines = show(stuff(body) + b".\r\n+OK next\r\n")
    assert out == b"Subject: x\n\n..\n..x\nbare\\rCR\nbare\\nLF\nend\n.\n"
    assert rest == b"+OK next\r\n"
    assert lines == 8


def test_an_empty_response_is_its_dot() -> None:
    assert show(b".\r\n+OK\r\n") == (b".\n", b"+OK\r\n", 1)


def test_a_hang_up_before_the_terminator_is_75() -> None:
    with pytest.raises(TempFailError):
        show(b"line\r\n..\r\n")


@settings(max_examples=400, deadline=None)
@given(message=MESSAGE, buffer_size=st.integers(1, 64), block=st.integers(2, 50))
def test_any_message_at_any_block_boundary(message: bytes, buffer_size: int, block: int) -> None:
    wire = stuff(message)
    original = wirelines.BLOCK_SIZE
    wirelines.BLOCK_SIZE = block  # small blocks: long lines and every split position
    try:
        out, rest, lines = show(wire + b".\r\n+OK next\r\n", buffer_size)
    finally:
        wirelines.BLOCK_SIZE = original
    wire_lines = wire.removesuffix(b"\r\n").split(b"\r\n") if wire else []
    expected = [line.replace(b"\r", b"\\r").replace(b"\n", b"\\n") for line in wire_lines]
    assert out == b"".join(line + b"\n" for line in [*expected, b"."])
    assert rest == b"+OK next\r\n"  # a pipelined reply behind it is left unread
    assert b"\r" not in out
    assert out.split(b"\n").count(b".") == 1
    assert lines == len(wire_lines) + 1
