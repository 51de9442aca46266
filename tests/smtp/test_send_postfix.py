"""`mailcli send` through the throwaway Postfix into Dovecot's Maildirs: what arrives is
checked file by file (envelope vs headers, Bcc, attachments, encodings, dots)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account, Security
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

PORT_SECURITY: dict[str, Security] = {"submission": "starttls", "smtps": "tls", "smtp": "none"}


def submit(
    postfix: Postfix,
    box: Mailbox,
    *args: str,
    port: str = "submission",
    input: str | None = None,
) -> Result:
    """`mailcli send ARGS` as ``box`` through Postfix's submission, smtps or smtp port."""
    security = PORT_SECURITY[port]
    account = Account.submission(postfix, box.user, box.password, security=security)
    return Mailcli(account)("send", *args, input=input)


def delivered(postfix: Postfix, box: Mailbox, count: int = 1) -> list[EmailMessage]:
    paths = sorted(postfix.wait_for_delivery(box.user, count), key=os.path.getmtime)
    return [parse(path.read_bytes()) for path in paths]


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def test_envelope_decides_delivery_headers_are_content(postfix: Postfix, mailbox: Mailbox) -> None:
    """The SMTP post's point: To says one thing, RCPT TO another; RCPT TO wins."""
    result = submit(
        postfix,
        mailbox,
        "--from",
        "The CEO <ceo@example.test>",
        "--to",
        "all-staff@example.test",
        "--envelope-from",
        "bounces@example.test",
        "--rcpt",
        mailbox.address,
        "--subject",
        "envelope demo",
        "--body",
        "hello",
    )
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{mailbox.address}\taccepted\t-"
    assert "queued as" in result.stdout
    (message,) = delivered(postfix, mailbox)
    assert message["Return-Path"] == "<bounces@example.test>"
    assert message["Delivered-To"] == mailbox.address
    assert message["To"] == "all-staff@example.test"
    assert message["From"] == "The CEO <ceo@example.test>"


def test_bcc_is_absent_from_every_copy(
    postfix: Postfix,
    dovecot: Dovecot,
    mailbox: Mailbox,
) -> None:
    dovecot.add_user(mailbox.user + "b", "pw-b")
    hidden = f"{mailbox.user}b@example.test"
    result = submit(
        postfix,
        mailbox,
        "--from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--bcc",
        hidden,
        "--subject",
        "bcc",
        "--body",
        "x",
    )
    assert result.code == 0, result.stderr
    copies = [path.read_bytes() for path in postfix.wait_for_delivery(mailbox.user)]
    copies += [path.read_bytes() for path in postfix.wait_for_delivery(mailbox.user + "b")]
    assert len(copies) == 2
    trace_headers = {"return-path", "x-original-to", "delivered-to", "received"}
    for data in copies:
        message = parse(data)
        assert "Bcc" not in message
        for name, value in message.items():
            if name.lower() not in trace_headers:  # the server's delivery trace may name it
                assert hidden not in str(value), name


def test_binary_attachment_of_5_mb_round_trips_byte_exactly(
    postfix: Postfix, mailbox: Mailbox, tmp_path: Path
) -> None:
    blob = tmp_path / "data.bin"
    blob.write_bytes(os.urandom(5 * 1024 * 1024) + b"\r\n.\r\n\n.")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 64)
    result = submit(
        postfix,
        mailbox,
        "--from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--subject",
        "files",
        "--body",
        "see attached",
        "--attach",
        str(blob),
        "--attach",
        str(pdf),
        port="smtps",
    )
    assert result.code == 0, result.stderr
    (message,) = delivered(postfix, mailbox)
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert attachments["report.pdf"].get_content_type() == "application/pdf"
    for path in (blob, pdf):
        received = attachments[path.name].get_payload(decode=True)
        assert isinstance(received, bytes)
        assert hashlib.sha256(received).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_non_ascii_subject_names_and_body_decode(postfix: Postfix, mailbox: Mailbox) -> None:
    result = submit(
        postfix,
        mailbox,
        "--from",
        "Jöhn Dœ <john@example.test>",
        "--to",
        f"Zoë Ångström <{mailbox.address}>",
        "--subject",
        "Grüße aus Köln ✓",
        "--body",
        "Größe: 42 €\n",
    )
    assert result.code == 0, result.stderr
    (message,) = delivered(postfix, mailbox)
    assert message["Subject"] == "Grüße aus Köln ✓"
    assert message["From"].addresses[0].display_name == "Jöhn Dœ"
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    assert message.get_content().replace("\r\n", "\n") == "Größe: 42 €\n"


def test_lines_beginning_with_dots_survive(postfix: Postfix, mailbox: Mailbox) -> None:
    body = ".\n..\n.leading\n...three\nend\n"
    result = submit(
        postfix,
        mailbox,
        "--from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--subject",
        "dots",
        input=body,
    )
    assert result.code == 0, result.stderr
    (message,) = delivered(postfix, mailbox)
    assert message.get_content().replace("\r\n", "\n") == body


def test_ready_message_arrives_unchanged_apart_from_trace_headers(
    postfix: Postfix, mailbox: Mailbox, tmp_path: Path
) -> None:
    raw = (
        f"From: Ann <ann@example.test>\nTo: {mailbox.address}\nSubject: as is\n"
        "Date: Mon, 01 Jan 2024 00:00:00 +0000\nMessage-ID: <fixed-1@example.test>\n"
        "X-Custom:   spaced   value\n\n.dot\nbody line\n\n"
    ).encode()
    path = tmp_path / "ready.eml"
    path.write_bytes(raw)
    result = submit(postfix, mailbox, "--message", str(path))
    assert result.code == 0, result.stderr
    (stored,) = postfix.wait_for_delivery(mailbox.user)
    data = stored.read_bytes()
    added, _, rest = data.partition(b"From: Ann")
    assert b"From: Ann" + rest == raw  # Maildir stores LF line ends, as it was written
    assert {line.split(b":")[0] for line in added.splitlines() if line[:1] not in b" \t"} <= {
        b"Return-Path",
        b"X-Original-To",
        b"Delivered-To",
        b"Received",
    }


def test_plain_port_without_auth_and_plain_on_submission(
    postfix: Postfix, mailbox: Mailbox
) -> None:
    plain = submit(
        postfix,
        mailbox,
        "--from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--body",
        "plain",
        "--trace",
        port="smtp",
    )
    assert plain.code == 0, plain.stderr
    assert "AUTH" not in plain.stderr.replace("250-AUTH", "")
    unforced = submit(
        postfix,
        mailbox,
        "--from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--body",
        "plain",
        "--trace",
    )
    assert unforced.code == 0, unforced.stderr
    assert "~> AUTH PLAIN ********" in unforced.stderr  # inside TLS: one round trip
    assert len(delivered(postfix, mailbox, 2)) == 2


@pytest.mark.parametrize("mechanism", ["plain", "login", "cram-md5"])
def test_each_auth_mechanism_works_and_is_masked(
    postfix: Postfix, mailbox: Mailbox, mechanism: str
) -> None:
    result = submit(
        postfix,
        mailbox,
        "--auth",
        mechanism,
        "--from",
        mailbox.address,
        "--to",
        mailbox.address,
        "--body",
        mechanism,
        "--trace",
    )
    assert result.code == 0, result.stderr
    forms = [
        mailbox.password,
        base64.b64encode(mailbox.password.encode()).decode(),
        base64.b64encode(f"\0{mailbox.user}\0{mailbox.password}".encode()).decode(),
    ]
    assert not any(form in result.stderr for form in forms)
    assert f"~> AUTH {mechanism.upper()}" in result.stderr


def test_refused_recipient_and_wrong_password(postfix: Postfix, mailbox: Mailbox) -> None:
    partly = submit(
        postfix,
        mailbox,
        "--from",
        mailbox.address,
        "--to",
        f"{mailbox.address}, {postfix.refused_recipient}",
        "--body",
        "x",
    )
    assert partly.code == 67
    assert f"{postfix.refused_recipient}\trefused\t550 5.1.1" in partly.stdout
    assert len(delivered(postfix, mailbox)) == 1
    account = Account.submission(postfix, mailbox.user, "nope")
    wrong = Mailcli(account)("send", "--from", "a@x", "--to", mailbox.address, "--body", "x")
    assert wrong.code == 77
