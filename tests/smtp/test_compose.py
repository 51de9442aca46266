"""Composition and validation: envelope apart from headers, nothing sent on bad input."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from mailcli.errors import DataError, NoInputError, UsageError
from mailcli.smtp.compose import ComposeRequest, compose
from mailcli.smtp.rawmessage import normalise_line_endings, prepare_message


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def test_envelope_defaults_to_from_and_all_recipients_bcc_hidden() -> None:
    out = compose(
        ComposeRequest(
            from_addr="Ann Example <ann@example.org>",
            to=["bob@example.test, Carl <carl@example.test>"],
            cc=["dee@example.test"],
            bcc=["eve@example.test"],
            subject="s",
        )
    )
    assert out.envelope.sender == "ann@example.org"  # the display name never goes to MAIL FROM
    assert out.envelope.recipients == (
        "bob@example.test",
        "carl@example.test",
        "dee@example.test",
        "eve@example.test",
    )
    message = parsed(out.data)
    assert "Bcc" not in message and b"eve@example.test" not in out.data
    assert message["To"] == "bob@example.test, Carl <carl@example.test>"
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert b"\r\n" in out.data and b"\n" not in out.data.replace(b"\r\n", b"")


def test_envelope_from_and_rcpt_replace_the_defaults() -> None:
    out = compose(
        ComposeRequest(
            from_addr="ceo@example.org",
            to=["all@example.org"],
            envelope_from="bounces@example.org",
            rcpt=["ops@example.test", "dev@example.test,ops@example.test"],
        )
    )
    assert out.envelope.sender == "bounces@example.org"
    assert out.envelope.recipients == ("ops@example.test", "dev@example.test")
    assert parsed(out.data)["To"] == "all@example.org"


def test_null_envelope_sender() -> None:
    out = compose(
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], envelope_from="<>")
    )
    assert out.envelope.sender == ""


def test_non_ascii_display_names_and_subject_are_encoded_words() -> None:
    out = compose(
        ComposeRequest(
            from_addr="Jöhn Dœ <john@example.org>",
            to=["b@example.org"],
            subject="Grüße, 世界",
            body="héllo wörld\n",
        )
    )
    assert out.data.isascii() and not out.smtputf8
    message = parsed(out.data)
    assert message["From"].addresses[0].display_name == "Jöhn Dœ"
    assert message["Subject"] == "Grüße, 世界"
    assert message.get_content().replace("\r\n", "\n") == "héllo wörld\n"


def test_non_ascii_mailbox_needs_smtputf8() -> None:
    out = compose(ComposeRequest(from_addr="a@example.org", to=["üser@bücher.example"]))
    assert out.smtputf8
    assert "üser@bücher.example".encode() in out.data


@pytest.mark.parametrize(
    "request_",
    [
        ComposeRequest(from_addr="a@example.org", to=["b@example.org\r\nBcc: x@evil"]),
        ComposeRequest(from_addr="a@example.org\nX: y", to=["b@example.org"]),
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], subject="hi\nBcc: x@y"),
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], subject="nul\0"),
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], headers=["X-A: b\rc"]),
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], rcpt=["c@d\n"]),
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], envelope_from="x@y\r"),
    ],
    ids=["to", "from", "subject", "nul", "header", "rcpt", "envelope-from"],
)
def test_header_injection_is_refused(request_: ComposeRequest) -> None:
    with pytest.raises(DataError, match="header injection") as caught:
        compose(request_)
    assert caught.value.exit_status == 65


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ComposeRequest(from_addr="a@example.org", to=["not an address"]), "--to: cannot parse"),
        (ComposeRequest(from_addr="a@example.org", to=["a@b c@d"]), "--to: cannot parse"),
        (ComposeRequest(from_addr="a@example.org"), "no recipients"),
        (ComposeRequest(to=["b@example.org"]), "no From address"),
        (ComposeRequest(from_addr="a@x, b@y", to=["b@example.org"]), "exactly one"),
        (ComposeRequest(from_addr="a@x", to=["b@x"], envelope_from="Ann <a b>"), "bare address"),
        (ComposeRequest(from_addr="a@x", to=["b@x"], headers=["NoColon"]), "'Name: value'"),
        (ComposeRequest(from_addr="a@x", to=["b@x"], headers=["Bad Name: v"]), "'Name: value'"),
    ],
)
def test_bad_input_is_a_data_error(request_: ComposeRequest, message: str) -> None:
    with pytest.raises(DataError, match=message):
        compose(request_)


def test_missing_attachment_is_66(tmp_path: Path) -> None:
    with pytest.raises(NoInputError, match="no such file") as caught:
        compose(ComposeRequest(from_addr="a@x", to=["b@x"], attachments=[tmp_path / "gone.pdf"]))
    assert caught.value.exit_status == 66


def test_attachments_are_byte_exact_and_typed(tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 40 + b"\r\n.\r\n\n\r")
    text = tmp_path / "notes.txt"
    text.write_bytes(b"line one\nline two with CRLF\r\n")
    html = tmp_path / "page.html"
    html.write_text("<p>hi</p>")
    out = compose(
        ComposeRequest(
            from_addr="a@x", to=["b@x"], body="see attached", html=html, attachments=[binary, text]
        )
    )
    whole = b"".join(out.chunks())  # attachments are encoded while the message is sent
    assert out.size == len(whole)
    assert len(out.data) < 2000  # the template holds marker lines, not the files
    message = parsed(whole)
    parts = {p.get_filename(): p for p in message.iter_attachments()}
    assert parts["blob.bin"].get_content() == binary.read_bytes()
    assert parts["notes.txt"].get_content_type() == "text/plain"
    assert parts["notes.txt"].get_payload(decode=True) == text.read_bytes()
    body = message.get_body(("html",))
    assert body is not None and "<p>hi</p>" in body.get_content()


def test_custom_headers_add_and_unique_ones_replace() -> None:
    out = compose(
        ComposeRequest(
            from_addr="a@x",
            to=["b@x"],
            subject="old",
            headers=["X-Ticket: 42", "Subject: new", "X-Ticket: 43"],
        )
    )
    message = parsed(out.data)
    assert message.get_all("X-Ticket") == ["42", "43"]
    assert message.get_all("Subject") == ["new"]


def test_ready_message_is_sent_as_is_but_crlf_without_bcc() -> None:
    raw = (
        b"From: Ann <ann@example.org>\nTo: bob@example.test\nBcc: hidden@example.test,\n"
        b" other@example.test\nSubject: as is\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Message-ID: <fixed@example.org>\n\n.leading dot\nbody\n"
    )
    out = prepare_message(raw, envelope_from=None, rcpt=())
    assert out.envelope.sender == "ann@example.org"
    assert out.envelope.recipients == (
        "bob@example.test",
        "hidden@example.test",
        "other@example.test",
    )
    assert out.data == (
        b"From: Ann <ann@example.org>\r\nTo: bob@example.test\r\n"
        b"Subject: as is\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <fixed@example.org>\r\n\r\n.leading dot\r\nbody\r\n"
    )


def test_ready_message_gets_missing_date_and_message_id() -> None:
    out = prepare_message(
        b"From: a@example.org\r\nTo: b@x\r\n\r\nhi", envelope_from=None, rcpt=["c@x"]
    )
    assert out.envelope.recipients == ("c@x",)
    message = parsed(out.data)
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert out.data.endswith(b"\r\n\r\nhi\r\n")


@pytest.mark.parametrize("raw", [b"no header here\n\nbody", b"", b"From a@b Mon\n"])
def test_unparsable_ready_message_is_65(raw: bytes) -> None:
    with pytest.raises(DataError):
        prepare_message(raw, envelope_from=None, rcpt=())


def test_line_endings_normalised() -> None:
    assert normalise_line_endings(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd\r\n"


@pytest.mark.parametrize(
    "blind",
    [
        b"Bcc: hidden@example.test",
        b"Bcc : hidden@example.test",
        b"bcc:\n hidden@example.test",
        b"Resent-Bcc: hidden@example.test",
        b"RESENT-BCC\t: hidden@example.test",
    ],
)
def test_ready_message_never_transmits_any_bcc_spelling(blind: bytes) -> None:
    raw = b"From: ann@example.org\n" + blind + b"\nTo: bob@example.test\nSubject: s\n\nbody\n"
    out = prepare_message(raw, envelope_from=None, rcpt=())
    assert "hidden@example.test" in out.envelope.recipients
    assert b"hidden" not in out.data and b"bcc" not in out.data.lower()
    assert b"\r\nTo: bob@example.test\r\nSubject: s\r\n\r\nbody\r\n" in out.data


def test_ready_resent_message_goes_to_its_resent_recipients() -> None:
    raw = (
        b"From: ann@example.org\nTo: bob@example.test\nSubject: s\n"
        b"Resent-From: ann@example.org\nResent-To: carl@example.test\n"
        b"Resent-Bcc: dora@example.test\n\nbody\n"
    )
    out = prepare_message(raw, envelope_from=None, rcpt=())
    assert out.envelope.recipients == ("carl@example.test", "dora@example.test")
    assert b"dora" not in out.data and b"\r\nTo: bob@example.test\r\n" in out.data


@pytest.mark.parametrize(
    "header", ["Bcc: secret@x.test", "bcc : secret@x.test", "Resent-Bcc: secret@x.test"]
)
def test_a_bcc_header_option_is_refused_it_would_be_transmitted(header: str) -> None:
    with pytest.raises(UsageError, match="--bcc"):
        compose(ComposeRequest(from_addr="a@x.test", to=["b@x.test"], headers=[header]))
