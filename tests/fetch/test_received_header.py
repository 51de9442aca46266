"""`fetch --received-header` (key `received_header`): one Received line before each
message in every destination, the rest byte-identical; off by default; the state's
sizes stay the server's, so later runs fetch nothing again and `--delete` deletes."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from mailcli.fetch.received import ReceivedHeader
from tests.helpers import Mailcli
from tests.servers.accounts import Account, numbered_message
from tests.servers.certs import Certs
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.lmtp import LmtpDovecot, maildir_messages, require_lmtp, stored_message

RECEIVED = re.compile(
    rb"Received: from (?P<server>\S+)\n"
    rb"\tby (?P<local>\S+) \((?P<via>[^)]*)\) with POP3 id (?P<id>[A-Za-z0-9_=-]+);\n"
    rb"\t(?P<date>[^\n]+)\n"
)


def messages() -> list[bytes]:
    """Three messages, one with a Return-Path (the Received line goes above it)."""
    first = b"Return-Path: <alice@example.test>\n" + numbered_message(0)
    return [first, numbered_message(1, size=300_000), numbered_message(2)]


def uids(mailcli: Mailcli) -> list[str]:
    return [row["uid"] for row in mailcli.json("list")["messages"]]


def split(delivered: bytes, started: float) -> tuple[dict[str, bytes], bytes]:
    """(the Received line's parts, the message after it), checking its date."""
    match = RECEIVED.match(delivered)
    assert match, delivered[:300]
    moment = parsedate_to_datetime(match["date"].decode()).timestamp()
    assert started - 1 <= moment <= time.time() + 1
    return match.groupdict(), delivered[match.end() :]


def check(parts: dict[str, bytes], server: str, uid: str, account: str | None) -> None:
    assert parts["server"].decode() == f"[{server}]"  # the test Dovecot's address
    assert parts["local"].decode() == re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())
    assert parts["via"].decode() == "mailcli" + (f", account {account}" if account else "")
    assert parts["id"].decode() == uid  # Dovecot's UIDs are letters and digits


def test_maildir_gets_the_line_and_the_message_byte_identical(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    mailbox.drop(*messages())
    target = tmp_path / "Maildir"
    started = time.time()
    done = mailcli.json("fetch", "--to", str(target), "--received-header")
    assert done["fetched"] == 3
    assert done["bytes"] == sum(len(m) + m.count(b"\n") for m in messages())  # CRLF on the wire
    names = sorted(os.listdir(target / "new"))
    by_subject = {}
    for name in names:
        parts, rest = split((target / "new" / name).read_bytes(), started)
        check(parts, mailcli.account.host, parts["id"].decode(), None)
        subject = re.search(rb"Subject: (\S+)", rest)
        assert subject
        by_subject[subject[1]] = (rest, parts["id"].decode())
    assert [by_subject[f"n{n}".encode()][0] for n in range(3)] == messages()
    assert sorted(uid for _, uid in by_subject.values()) == sorted(uids(mailcli))
    # The state holds the server's sizes: nothing again, and --delete deletes them all.
    assert mailcli.json("fetch", "--to", str(target), "--received-header")["fetched"] == 0
    assert mailcli.json("fetch", "--to", str(target), "--delete")["deleted"] == 3
    assert mailcli.server_count() == 0


def test_off_by_default_byte_identical(mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path) -> None:
    mailbox.drop(*messages())
    target = tmp_path / "Maildir"
    assert mailcli.json("fetch", "--to", str(target))["fetched"] == 3
    stored = sorted((target / "new" / name).read_bytes() for name in os.listdir(target / "new"))
    assert stored == sorted(messages())


def write_config(home: Path, setting: str) -> None:
    config = home / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'default_account = "work"\n[accounts.work.fetch]\n{setting}\n')


def test_the_key_turns_it_on_for_mbox_and_the_option_turns_it_off(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, isolated_environment: Path
) -> None:
    write_config(isolated_environment, "received_header = true")
    mailbox.drop(*messages())
    target = tmp_path / "inbox.mbox"
    started = time.time()
    assert mailcli.json("fetch", "--to", f"mbox:{target}")["fetched"] == 3
    separator = rb"^From \S+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"
    data = target.read_bytes()
    senders = re.findall(separator.replace(rb"\S+", rb"(\S+)"), data, re.M)
    assert senders == [b"alice@example.test", b"MAILER-DAEMON", b"MAILER-DAEMON"]
    order = uids(mailcli)
    stored = re.split(separator, data, flags=re.M)[1:]
    for number, (entry, message) in enumerate(zip(stored, messages(), strict=True)):
        parts, rest = split(entry, started)
        check(parts, mailcli.account.host, order[number], "work")
        quoted = re.sub(rb"^(>*From )", rb">\1", message, flags=re.M)  # mboxrd
        assert rest == quoted + b"\n"
    other = tmp_path / "other.mbox"
    assert mailcli.json("fetch", "--all", "--no-received-header", "--to", f"mbox:{other}")
    assert b"Received:" not in other.read_bytes()


def test_an_mda_gets_the_line_first(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, isolated_environment: Path
) -> None:
    write_config(isolated_environment, "received_header = false")
    mailbox.drop(*messages())
    out = tmp_path / "mda"
    out.mkdir()
    mda = f"mda:cat > {out}/$(ls {out} | wc -l)"
    started = time.time()
    assert mailcli.json("fetch", "--received-header", "--to", mda)["fetched"] == 3
    order = uids(mailcli)
    for number, message in enumerate(messages()):
        parts, rest = split((out / str(number)).read_bytes(), started)
        check(parts, mailcli.account.host, order[number], "work")
        assert rest == message


@pytest.fixture(scope="module")
def lmtp_dovecot(certs: Certs) -> Iterator[LmtpDovecot]:
    require_lmtp()
    with LmtpDovecot(certs) as server:
        yield server


def test_lmtp_gets_the_line_first(
    lmtp_dovecot: LmtpDovecot, isolated_environment: Path, tmp_path: Path
) -> None:
    source, target = make_mailbox(lmtp_dovecot, "rs"), make_mailbox(lmtp_dovecot, "rt")
    source.drop(*messages())
    mailcli = Mailcli(Account.pop3(lmtp_dovecot, source.user, source.password))
    started = time.time()
    to = f"lmtp:{lmtp_dovecot.lmtp_socket}"
    done = mailcli.json("fetch", "--to", to, "--lmtp-rcpt", target.user, "--received-header")
    assert done["fetched"] == 3
    order = uids(mailcli)
    by_uid = {}
    for data in maildir_messages(target.maildir):
        parts, rest = split(stored_message(data), started)  # without Dovecot's own lines
        check(parts, mailcli.account.host, parts["id"].decode(), None)
        by_uid[parts["id"].decode()] = rest
    assert [by_uid[uid] for uid in order] == messages()


@pytest.mark.parametrize(
    ("uid", "atom"),
    [("00000001abc", "00000001abc"), ("a b<@>\udcff.", "a=20b=3C=40=3E=FF=2E"), ("x" * 101, None)],
)
def test_the_uid_is_an_atom_or_left_out(uid: str, atom: str | None) -> None:
    line = ReceivedHeader("pop.example.test", "work", local="here").line(uid, 0.0)
    clause = b"" if atom is None else f" id {atom}".encode()
    assert line.startswith(
        b"Received: from pop.example.test\r\n\tby here (mailcli, account work) with POP3"
        + clause
        + b";\r\n\t"
    )


@pytest.mark.parametrize(
    ("server", "account", "first", "via"),
    [
        ("::1", None, b"[IPv6:::1]", b"(mailcli)"),
        ("[::1]", "a(b)\\c", b"[IPv6:::1]", b"(mailcli, account a_b__c)"),
        ("bad\r\nX-Injected: 1", "w\r\nX-Injected: 1", b"bad--X-Injected--1", b"account w__X-"),
    ],
)
def test_names_cannot_break_the_field(
    server: str, account: str | None, first: bytes, via: bytes
) -> None:
    line = ReceivedHeader(server, account, local="h\nX: y").line(None, 0.0)
    assert line.count(b"\n") == 3 and line.count(b"\r\n") == 3  # one field, three lines
    assert all(folded.startswith(b"\t") for folded in line.split(b"\r\n")[1:3])
    assert line.startswith(b"Received: from " + first + b"\r\n\tby h-X--y (")
    assert via in line
