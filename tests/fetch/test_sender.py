"""The envelope sender of a fetched message (`fetch.sender`): the first Return-Path,
made inert for a shell command and an mbox `From ` line, whatever the header holds; and
for LMTP's MAIL FROM, unchanged when it is a valid path, else the null sender."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcli.fetch.sender import (
    HEADER_LIMIT,
    HeaderCapture,
    envelope_sender,
    header_section,
    mail_from_address,
    return_path,
)
from tests.helpers import Mailcli
from tests.servers.fixtures import Mailbox

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


@pytest.mark.parametrize(
    "address",
    [
        b"SRS0=HHH=TT=example.org=alice@fwd.example",
        b"bounce-a=b@x",
        b"it's!#$%&*/=?^_`{|}~-x@example.test",
        b"-oQ/tmp/x@x.test",  # no command line here: the address as it is
        b'"a..b"@x.test',
        b'"a\\"b"@x.test',
        b"user@[IPv6:2001:db8::1]",
        b"a" * 245 + b"@x.test",
    ],
)
def test_mail_from_is_a_valid_path_unchanged(address: bytes) -> None:
    assert mail_from_address(b"Return-Path: <" + address + b">\n") == address.decode()
    assert mail_from_address(b"Return-Path: <@relay.test:" + address + b">\n") == address.decode()


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: no return path\n",
        b"Return-Path: <>\n",
        b"Return-Path: <unterminated@x.test\n",
        b"Return-Path: <$(touch x)@x.test>\n",
        b"Return-Path: <a@x.test\rRCPT TO:<root@x.test>\n",
        b"Return-Path: <a\x00b@x.test>\n",
        b"Return-Path: <a\tb@x.test>\n",
        "Return-Path: <jöhn@x.test>\n".encode(),
        b"Return-Path: a>b@x.test\n",  # bare: no angle bracket inside either
        b"Return-Path: <postmaster>\n",
        b"Return-Path: <a..b@x.test>\n",
        b"Return-Path: <.a@x.test>\n",
        b'Return-Path: <"john doe"@x.test>\n',
        b'Return-Path: <""@x.test>\n',
        b"Return-Path: <a@x..test>\n",
        b"Return-Path: <a@x.test.>\n",
        b"Return-Path: <a@-x.test>\n",
        b"Return-Path: <a@x_y.test>\n",
        b"Return-Path: <a@[1.2.3.4>\n",
        b"Return-Path: <a@b@x.test>\n",
        b"Return-Path: <" + b"a" * 248 + b"@x.test>\n",  # 255 characters
    ],
)
def test_mail_from_is_the_null_sender_for_anything_else(header: bytes) -> None:
    assert mail_from_address(header) == ""


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_header_gives_a_mail_from_that_stays_one_path(header: bytes) -> None:
    address = mail_from_address(header)
    assert len(address) <= 254
    assert re.fullmatch(r"[!-;=?-~]*", address), address  # no space, < > CR LF NUL, ASCII
    if address:
        assert address in header.decode("latin-1")


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


# Fetched from the real Dovecot: each message's header starts with these lines (or none),
# and the sender its mbox `From ` line, the MDA's %F and its SENDER must show.
HOSTILE = "$(touch PWNED)"  # PWNED: a path in the test's folder, created if ever run
RETURN_PATHS = [
    (b"Return-Path: <alice@example.test>\n", "alice@example.test"),
    (b"", "MAILER-DAEMON"),
    (b"Return-Path: <>\n", "MAILER-DAEMON"),
    (b"Return-Path:\n <folded@example.test>\nReturn-Path: <second@example.test>\n", None),
    (b"Return-Path: <" + HOSTILE.encode() + b"@evil.test>\n", None),
    (b"Return-Path: <';touch PWNED;'@evil.test>\n", None),
    (b"Return-Path: <-oQPWNED@evil.test>\n", None),
    (b"Return-Path: <\xff\xfe@evil.test>\n", "__@evil.test"),
    (b"Return-Path: <" + b"a" * 10_000 + b"@evil.test>\n", "MAILER-DAEMON"),
    # LMTP gets this one unchanged; a shell command and an mbox line never do.
    (
        b"Return-Path: <SRS0=HHH=TT=example.org=alice@fwd.example>\n",
        "SRS0_HHH_TT_example.org_alice@fwd.example",
    ),
]


def sender_messages(pwned: Path) -> list[tuple[bytes, str]]:
    """(message as the server stores it, the sender expected), Subject `s<N>`."""
    cases = []
    for number, (lines, expected) in enumerate(RETURN_PATHS):
        lines = lines.replace(b"PWNED", str(pwned).encode())
        body = f"From: s@example.test\nSubject: s{number}\n\nbody {number}\n".encode()
        sender = expected or envelope_sender(lines)
        cases.append((lines + body, sender))
    assert cases[3][1] == "folded@example.test"
    assert cases[4][1] == f"__touch_{pwned}_@evil.test"
    assert cases[6][1] == f"_oQ{pwned}@evil.test"
    return cases


def test_the_mbox_from_line_names_the_return_path(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    cases = sender_messages(pwned)
    mailbox.drop(*(message for message, _ in cases))
    target = tmp_path / "inbox.mbox"
    assert mailcli.json("fetch", "--to", f"mbox:{target}")["fetched"] == len(cases)
    data = target.read_bytes()
    separators = re.findall(rb"^From (\S+) \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", data, re.M)
    assert [s.decode() for s in separators] == [sender for _, sender in cases]
    stored = re.split(rb"^From \S+ .*\n", data, flags=re.M)[1:]
    assert stored == [message + b"\n" for message, _ in cases]  # the rest byte-identical
    assert not pwned.exists()


@pytest.mark.parametrize("argument", ["'%F'", "%F", '"%F"'])
def test_the_mda_gets_the_sender_as_percent_f_and_in_its_environment(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, argument: str
) -> None:
    pwned = tmp_path / "pwned"
    cases = sender_messages(pwned)
    mailbox.drop(*(message for message, _ in cases))
    out = tmp_path / "mda"
    out.mkdir()
    script = tmp_path / "mda.sh"
    script.write_text(
        f'n=$(ls {out} | grep -c sender)\nprintf "%s|%s|%s" "$#" "$1" "$SENDER" > {out}/$n.sender\n'
        f"cat > {out}/$n.message\n"
    )
    done = mailcli.json("fetch", "--to", f"mda:sh {script} {argument}")
    assert done["fetched"] == len(cases)
    for number, (message, sender) in enumerate(cases):
        assert (out / f"{number}.message").read_bytes() == message
        assert (out / f"{number}.sender").read_text() == f"1|{sender}|{sender}"
    assert not pwned.exists()
