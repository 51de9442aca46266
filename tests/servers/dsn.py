"""What the test Postfix did with a message's RFC 3461 parameters: the success DSN it
mails back to the envelope sender.

Asked for `NOTIFY=SUCCESS`, Postfix reports each delivery to the sender (a `USER@`
of the test domain, so the report lands in Dovecot's Maildir too): a multipart/report
whose delivery-status part quotes the `ENVID` (Original-Envelope-Id) and each `ORCPT`
(Original-Recipient), and whose last part is the whole message (`RET=FULL`) or only its
header (`RET=HDRS`, text/rfc822-headers). That report is the evidence that the
parameters reached Postfix as sent."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage

from .fixtures import Mailbox
from .postfix import Postfix


@dataclass(frozen=True)
class SuccessReport:
    """The fields of one success DSN that show what the submission asked for."""

    envid: str | None  # Original-Envelope-Id, None when the message gave no ENVID
    original_recipients: list[str]  # Original-Recipient values (ORCPT)
    actions: list[str]  # Action per recipient: "delivered" for success
    returned: str  # the content type of the returned part


def success_report(postfix: Postfix, box: Mailbox, messages: int = 2) -> SuccessReport:
    """The success DSN among the `messages` (the message and its report) in `box`."""
    paths = postfix.wait_for_delivery(box.user, messages)
    parsed = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in paths
    ]
    reports = [m for m in parsed if m.get_content_type() == "multipart/report"]
    assert len(reports) == 1, [m.get_content_type() for m in parsed]
    return _fields(reports[0])


def _fields(report: EmailMessage) -> SuccessReport:
    parts = list(report.iter_parts())
    status = next(p for p in parts if p.get_content_type() == "message/delivery-status")
    blocks: list[EmailMessage] = list(status.get_payload())  # type: ignore[arg-type]
    per_message, per_recipient = blocks[0], blocks[1:]
    return SuccessReport(
        envid=per_message.get("Original-Envelope-Id"),
        original_recipients=[str(b["Original-Recipient"]) for b in per_recipient],
        actions=[str(b["Action"]) for b in per_recipient],
        returned=parts[-1].get_content_type(),
    )
