"""LMTP's MAIL FROM is the fetched message's Return-Path exactly as the message carries
it (`fetch.sender.mail_from_address`), so that Dovecot's LMTP writes the same address
into the Return-Path of the mail it stores: forwarding (SRS) and list (VERP) bounce
addresses hold `=` and other characters that the shell-safe rendering would alter. A
Return-Path that is no valid RFC 5321 path (spaces, control bytes, angle brackets, UTF-8,
no domain, too long) goes as the null sender `<>`, never altered; the mbox `From ` line
and the MDA's `%F` keep the inert rendering (tests/fetch/test_sender.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests.servers.certs import Certs
from tests.servers.fixtures import make_mailbox
from tests.servers.lmtp import (
    LmtpDovecot,
    LmtpScript,
    maildir_messages,
    require_lmtp,
    scripted_lmtp,
    stored_message,
)

# Return-Path addresses any RFC 5321 server takes in MAIL FROM: each must arrive as it is.
EXACT = [
    "SRS0=HHH=TT=example.org=alice@fwd.example",
    "SRS1=XyZ=fwd.example==HHH=TT=example.org=alice@fwd2.example",
    "bounce-a=b@x.example",
    "list-bounces+alice=example.org@lists.example",
    "it's!#$%&*/=?^_`{|}~-x@example.test",  # every atext character
    '"a..b"@example.test',  # a quoted local part (a dot-string cannot hold "..")
    "user@[192.0.2.1]",  # an address literal
    "a" * 240 + "@example.test",  # 253 characters: still a path
]
# Return-Paths that are no path for MAIL FROM: each must arrive as the null sender.
NULL = [
    "$(touch PWNED)@evil.test",  # a space and parentheses
    "a@x.test\rRCPT TO:<root@localhost",  # a CR, a space and a `<`
    "jöhn@bücher.test",  # not ASCII
    "no-domain",
    "a..b@x.test",  # not a dot-string, not quoted
    '"john doe"@x.test',  # a space, even quoted
    "a@-x.test",  # a label starting with a hyphen
    "a" * 250 + "@x.test",  # longer than any path
    "",  # the null sender itself
]


def message(number: int, return_path: str) -> bytes:
    head = f"Return-Path: <{return_path}>\n".encode()
    return head + f"From: s@example.test\nSubject: rp {number}\n\nbody {number}\n".encode()


def messages(pwned: Path) -> list[tuple[bytes, str]]:
    """(message as the POP3 server stores it, the Return-Path LMTP must deliver)."""
    cases = [(address, address) for address in EXACT] + [(address, "") for address in NULL]
    return [
        (message(n, address.replace("PWNED", str(pwned))), delivered)
        for n, (address, delivered) in enumerate(cases)
    ]


def subject(data: bytes) -> str:
    found = re.search(rb"^Subject: (.*)$", data, re.M)
    assert found, data
    return found[1].decode()


@pytest.fixture(scope="module")
def lmtp_dovecot(certs: Certs) -> Iterator[LmtpDovecot]:
    require_lmtp()
    with LmtpDovecot(certs) as server:
        yield server


def fetch(server: LmtpDovecot, home: Path, cases: list[tuple[bytes, str]], *to: str) -> None:
    """Fetch `cases` from a new mailbox with `fetch --to TO...`."""
    source = make_mailbox(server, "rs")
    source.drop(*(data for data, _ in cases))
    where = ["--host", "127.0.0.1", "--port", str(server.pop3_port), "--security", "none"]
    env = cp.base_env(home, MAILCLI_PASSWORD=source.password)
    done = cp.run(["fetch", "--to", *to, *where, "--user", source.user], env)
    assert done.code == 0, done.stderr


def test_dovecot_lmtp_stores_the_return_path_unchanged_or_as_the_null_sender(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    cases = messages(pwned)
    target = make_mailbox(lmtp_dovecot, "rt")
    to = f"lmtp:{lmtp_dovecot.lmtp_socket}"
    fetch(lmtp_dovecot, tmp_path, cases, to, "--lmtp-rcpt", target.user)

    stored = {subject(data): data for data in maildir_messages(target.maildir)}
    assert len(stored) == len(cases)
    for number, (data, delivered) in enumerate(cases):
        first, rest = stored[f"rp {number}"].split(b"\n", 1)
        assert first.decode() == f"Return-Path: <{delivered}>"
        assert stored_message(rest) == data  # the message's own Return-Path untouched
    assert not pwned.exists()


def test_the_mail_from_line_on_the_wire_is_the_address_or_the_null_sender(
    lmtp_dovecot: LmtpDovecot, tmp_path: Path
) -> None:
    cases = messages(tmp_path / "pwned")
    script = LmtpScript()
    with scripted_lmtp(script) as server:
        fetch(lmtp_dovecot, tmp_path, cases, f"lmtp:127.0.0.1:{server.port}")

    assert [mail for mail, _ in script.envelopes] == [
        f"MAIL FROM:<{delivered}>" for _, delivered in cases
    ]
