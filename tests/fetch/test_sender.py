"""The envelope sender of a fetched message (`fetch.sender`): the first Return-Path,
made inert for a shell command and an mbox `From ` line, whatever the header holds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcli.fetch.sender import (
    HEADER_LIMIT,
    HeaderCapture,
    envelope_sender,
    header_section,
    return_path,
)

INERT = re.compile(r"[A-Za-z0-9.@_+/][A-Za-z0-9.@_+/-]*")


@pytest.mark.parametrize(
    ("header", "sender"),
    [
        (b"Return-Path: <alice@example.test>\nFrom: b@example.test\n", "alice@example.test"),
        (b"From: b@example.test\r\nreturn-path:<bob+x@example.test>\r\n", "bob+x@example.test"),
        (b"Return-Path : <a@x.test> (a comment)\n", "a@x.test"),
        (b"Return-Path: (comment) <a@x.test>\n", "a@x.test"),
        (b"Return-Path: plain@x.test\n", "plain@x.test"),
        (b"Return-Path:\n  <folded@x.test>\n", "folded@x.test"),
        (b"Return-Path: <@relay.test,@b.test:routed@x.test>\n", "routed@x.test"),
        (b"Return-Path: <first@x.test>\nReturn-Path: <second@x.test>\n", "first@x.test"),
        (b"Return-Path: <>\n", "MAILER-DAEMON"),
        (b"Return-Path: < >\n", "MAILER-DAEMON"),
        (b"From: a@x.test\nSubject: no return path\n", "MAILER-DAEMON"),
        (b"", "MAILER-DAEMON"),
        (b"Return-Path: <unterminated@x.test\n", "MAILER-DAEMON"),
        (b"Return-Path: two words\n", "MAILER-DAEMON"),
        (b"Return-Path:\n", "MAILER-DAEMON"),
        (b"X-Return-Path: <not@this.test>\n", "MAILER-DAEMON"),
        (b"Subject: x\n Return-Path: <continuation@x.test>\n", "MAILER-DAEMON"),
        # After the empty line it is the body.
        (b"Subject: x\n\nReturn-Path: <body@x.test>\n", "MAILER-DAEMON"),
        (b"Subject: x\r\n\r\nReturn-Path: <body@x.test>\r\n", "MAILER-DAEMON"),
    ],
)
def test_the_first_return_path_or_mailer_daemon(header: bytes, sender: str) -> None:
    assert envelope_sender(header) == sender


def test_the_null_sender_is_empty_and_no_return_path_is_none() -> None:
    assert return_path(b"Return-Path: <>\n") == ""
    assert return_path(b"Subject: x\n") is None
    assert return_path(b"Return-Path: <a@x.test>\n") == "a@x.test"


@pytest.mark.parametrize(
    ("address", "inert"),
    [
        (b"$(touch /tmp/pwned)@x.test", "__touch_/tmp/pwned_@x.test"),
        (b"a';rm -rf ~;'@x.test", "a__rm_-rf____@x.test"),
        (b"`id`@x.test", "_id_@x.test"),
        (b'"john doe"@x.test', "_john_doe_@x.test"),
        (b"-oQ/tmp/evil@x.test", "_oQ/tmp/evil@x.test"),  # never an option
        (b"--help", "_-help"),
        (b"a\x00b\rc@x.test", "a_b_c@x.test"),
        ("jöhn@bücher.test".encode(), "j__hn@b__cher.test"),
        (b"\xff\xfe@x.test", "__@x.test"),
        (b"*?[a]~@x.test", "___a__@x.test"),
    ],
)
def test_hostile_addresses_are_made_inert(address: bytes, inert: str) -> None:
    assert envelope_sender(b"Return-Path: <" + address + b">\n") == inert


def test_an_address_longer_than_any_path_is_unknown() -> None:
    longest = b"a" * 245 + b"@x.test"  # 252 characters: still an address
    assert envelope_sender(b"Return-Path: <" + longest + b">\n") == longest.decode()
    huge = b"a" * 10_000 + b"@x.test"
    assert envelope_sender(b"Return-Path: <" + huge + b">\n") == "MAILER-DAEMON"


def test_only_the_first_header_limit_bytes_are_read() -> None:
    filler = b"X-Filler: " + b"y" * (HEADER_LIMIT + 10) + b"\n"
    assert envelope_sender(filler + b"Return-Path: <late@x.test>\n") == "MAILER-DAEMON"
    assert envelope_sender(b"Return-Path: <early@x.test>\n" + filler) == "early@x.test"


def test_a_line_feed_in_a_header_ends_its_field() -> None:
    # A lone CR is data (sanitised); an LF ends the line, and the next one is not folded.
    assert envelope_sender(b"Return-Path: <a@x.test\rb>\n") == "a@x.test_b"
    assert envelope_sender(b"Return-Path: <a@x.test\n;rm>\n") == "MAILER-DAEMON"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_any_header_gives_one_inert_word(header: bytes) -> None:
    sender = envelope_sender(header)
    assert INERT.fullmatch(sender) and len(sender) <= 254, sender


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"Return-Path: <a@x.test>", b"Subject: s", b" folded", b"", b"\r", b"body"]
        ),
        max_size=12,
    ).map(lambda lines: b"\n".join(lines)),
    st.lists(st.integers(min_value=0, max_value=100), max_size=6),
)
def test_the_capture_at_any_block_boundary_sees_the_header_section(
    message: bytes, cuts: list[int]
) -> None:
    capture = HeaderCapture()
    start = 0
    for cut in sorted(cuts):
        capture.feed(message[start:cut])
        start = max(start, cut)
    capture.feed(message[start:])
    assert capture.header == header_section(message)
    assert envelope_sender(capture.header) == envelope_sender(message)


def test_the_capture_is_complete_at_the_empty_line_or_the_limit() -> None:
    capture = HeaderCapture()
    assert not capture.feed(b"Return-Path: <a@x.test>\r\nSubject: s\r")
    assert capture.feed(b"\n\r\nbody")
    assert capture.header == b"Return-Path: <a@x.test>\r\nSubject: s\r\n"
    endless = HeaderCapture()
    assert not endless.feed(b"X: " + b"y" * (HEADER_LIMIT - 10))
    assert endless.feed(b"y" * 100)
    assert len(endless.header) == HEADER_LIMIT
