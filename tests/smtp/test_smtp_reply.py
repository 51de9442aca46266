"""SMTP replies as data: the reply codes, RFC 3463 enhanced status, and a permanent
refusal (`RejectedError`) carrying the server's reply it was raised for."""

from __future__ import annotations

import pytest

from mailcli.auth.credential import Password
from mailcli.errors import RejectedError
from mailcli.smtp.rawmessage import prepare_message
from mailcli.smtp.reply import Reply, ReplyCode
from mailcli.smtp.session import submit
from mailcli.transcript import Transcript
from tests.helpers import make_endpoint
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpscripts import smtp_server


@pytest.mark.parametrize(
    ("message", "enhanced", "text"),
    [
        ("5.7.1 Relay access denied", "5.7.1", "Relay access denied"),
        ("4.2.2 Mailbox full\nsecond line", "4.2.2", "Mailbox full\nsecond line"),
        ("5.6.0", "5.6.0", ""),
        ("Relay access denied", None, "Relay access denied"),
        ("1.2.3 not a class", None, "1.2.3 not a class"),
        ("5.x.1 letters", None, "5.x.1 letters"),
        ("", None, ""),
    ],
)
def test_a_reply_splits_its_enhanced_status_from_its_text(
    message: str, enhanced: str | None, text: str
) -> None:
    reply = Reply(550, message)
    assert (reply.enhanced_status, reply.text) == (enhanced, text)
    assert str(reply) == f"550 {message}"  # what every message and JSON field shows


def test_reply_codes_compare_as_the_numbers_the_server_sends() -> None:
    assert Reply(250, "ok").code == ReplyCode.COMPLETED
    assert (ReplyCode.READY, ReplyCode.START_INPUT) == (220, 354)
    assert Reply(451, "later").temporary and not Reply(550, "no").temporary


_refuse_mail_from = smtp_server(
    answers={"MAIL": "550 5.7.1 Sender address rejected: not owned by user"}
)


def test_a_refused_mail_from_raises_rejected_error_with_the_reply() -> None:
    with ScriptedServer(_refuse_mail_from) as server:
        endpoint = make_endpoint("smtp", server.port, host=server.host)
        outgoing = prepare_message(
            b"From: a@example.org\r\nTo: b@example.org\r\n\r\nhi\r\n",
            envelope_from=None,
            rcpt=(),
        )
        with pytest.raises(RejectedError) as raised:
            submit(endpoint, outgoing, credential=Password(lambda: ""), transcript=Transcript())
    error = raised.value
    assert (error.code, error.enhanced_status, error.text) == (
        550,
        "5.7.1",
        "Sender address rejected: not owned by user",
    )
    assert error.message == (
        "MAIL FROM refused by the server: 550 5.7.1 Sender address rejected: not owned by user"
    )
    assert int(error.exit_status) == 69
