"""The `smuggling` probe: does the server end DATA at something other than CRLF.CRLF?

For each end-of-data variant two connections run at once (threads, so the whole probe
takes one wait, not fourteen):

(a) the message, then only the variant; a reply within `wait` seconds means the server
    took the variant as end-of-data. Silence: we close without ending DATA, so nothing
    is queued.
(b) the message, the variant, a complete second MAIL/RCPT/DATA ending in a proper
    CRLF.CRLF, and QUIT, in one write. Every outcome is answered at once, so (b) never
    depends on a wait: two "queued" replies (the second message was smuggled) = fail;
    one = the variant was message text (ok); a refusal after the first (e.g. Postfix's
    `554 5.5.0 Error: SMTP protocol synchronization`) with (a) accepted = warn.

So `fail` and `ok` are decided by (b) alone, whose replies always come; `wait` only
separates warn from ok when (b) was refused, and a server that takes the variant answers
(a) at once. Messages go only to --audit-rcpt, from it, with a Subject naming the probe.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import NamedTuple

from mailcli.check.background import Background
from mailcli.check.findings import AuditTarget, Finding, Level, skipped
from mailcli.check.smtp_raw import ProbeError, Reply, SmtpDialog, one_line

SMUGGLING_WAIT = 3.0
# Headers always end in CRLF: Exim's Debian fix treats LF-only headers as an LF-only
# message, where a bare-LF end is legitimate.
VARIANTS: tuple[bytes, ...] = (
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r\r\n",
    b"\r.\r",
    b"\r\n\x00.\r\n",
)


class VariantResult(NamedTuple):
    variant: bytes
    alone_accepted: bool  # (a): a reply to the variant alone
    queued: int  # (b): how many messages the server said it queued
    refused: bool  # (b): a refusal after the first message
    evidence: tuple[str, ...]

    @property
    def level(self) -> Level:
        if self.queued >= 2:
            return "fail"
        return "warn" if self.refused and self.alone_accepted else "ok"


def probe_smuggling(target: AuditTarget, *, wait: float = SMUGGLING_WAIT) -> list[Finding]:
    if target.audit_rcpt is None:
        return [skipped("smuggling", "needs --audit-rcpt: it sends mail to that address")]
    # Daemon threads (`background` says why); their connections are shut down with the
    # audit's at its deadline, which ends these waits too.
    alone = [Background(partial(_variant_alone, target, v, wait)) for v in VARIANTS]
    appended = [Background(partial(_variant_with_second, target, v)) for v in VARIANTS]
    results = [
        _result(v, a.result(), b.result())
        for v, a, b in zip(VARIANTS, alone, appended, strict=True)
    ]
    return [_grade(results)]


def _result(
    variant: bytes, alone: tuple[bool, list[str]], appended: tuple[int, bool, list[str]]
) -> VariantResult:
    accepted, evidence_a = alone
    queued, refused, evidence_b = appended
    evidence = ("-- (a) the variant alone", *evidence_a, "-- (b) a second message after it")
    return VariantResult(variant, accepted, queued, refused, (*evidence, *evidence_b))


def _grade(results: list[VariantResult]) -> Finding:
    order: tuple[Level, ...] = ("ok", "warn", "fail")
    worst = max(results, key=lambda r: order.index(r.level))
    lines = tuple(
        f"== {escaped(r.variant)}: alone {'accepted' if r.alone_accepted else 'not end-of-data'}; "
        f"with a second message: {r.queued} queued{', then refused' if r.refused else ''}"
        for r in results
    )
    named = ", ".join(escaped(r.variant) for r in results if r.level == worst.level)
    if worst.level == "fail":
        summary = f"SMTP smuggling: a second message was accepted after {named}"
    elif worst.level == "warn":
        summary = (
            f"{named} ends DATA, but the command pipelined after it was refused: not "
            "exploitable as tested, fix the line ends anyway"
        )
    else:
        summary = "only CRLF.CRLF ends DATA (every variant was taken as message text)"
    evidence = (*lines, *(worst.evidence if worst.level != "ok" else ()))
    return Finding("smuggling", worst.level, summary, evidence)  # fix: the catalogue's


def escaped(variant: bytes) -> str:
    """A variant as a person writes it: `\\r\\n.\\n`."""
    return repr(variant)[2:-1]


def _message(target: AuditTarget, variant: bytes, part: str) -> bytes:
    sender = target.audit_rcpt or ""
    return (
        f"From: <{sender}>\r\nTo: <{sender}>\r\n"
        f"Subject: mailcli audit: smuggling probe ({escaped(variant)}, {part})\r\n\r\n"
        f"mailcli check --audit: the smuggling probe, {part}."
    ).encode()


def _start_data(target: AuditTarget) -> SmtpDialog:
    smtp = SmtpDialog.open(target)
    try:
        for line, expected in (
            (f"MAIL FROM:<{target.audit_rcpt}>", 250),
            (f"RCPT TO:<{target.audit_rcpt}>", 250),
            ("DATA", 354),
        ):
            code, lines = smtp.command(line)
            if code != expected:
                raise ProbeError(f"{line.split(':')[0]} refused: {one_line(lines)}")
    except BaseException:
        smtp.conn.close()
        raise
    return smtp


def _variant_alone(target: AuditTarget, variant: bytes, wait: float) -> tuple[bool, list[str]]:
    with _start_data(target) as smtp:
        smtp.conn.send(_message(target, variant, "alone") + variant)
        line = smtp.conn.read_line_within(wait)
        if line is None:
            # Not end-of-data: hang up mid-DATA, so the server queues nothing.
            smtp.conn.note(f"no reply within {wait:g} s: closing without ending DATA")
            return False, smtp.conn.evidence
        smtp.quit()
        return line[:1] == b"2", smtp.conn.evidence


def _variant_with_second(target: AuditTarget, variant: bytes) -> tuple[int, bool, list[str]]:
    rcpt = target.audit_rcpt
    second = (
        f"MAIL FROM:<{rcpt}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode()
        + _message(target, variant, "smuggled second message")
        + b"\r\n.\r\nQUIT\r\n"
    )
    with _start_data(target) as smtp:
        smtp.conn.send(_message(target, variant, "first message") + variant + second)
        replies = _replies_until_closed(smtp)
    return _count_queued(replies), any(code >= 400 for code, _ in replies), smtp.conn.evidence


def _replies_until_closed(smtp: SmtpDialog) -> list[Reply]:
    replies: list[Reply] = []
    with contextlib.suppress(OSError):
        while (reply := smtp.conn.read_smtp_reply()) is not None:
            replies.append(reply)
            if reply[0] == 221:
                break
    return replies


def _count_queued(replies: list[Reply]) -> int:
    """The 250s that answer an end of DATA: the first reply, and any after a 354."""
    codes = [code for code, _ in replies]
    return sum(1 for n, code in enumerate(codes) if code == 250 and (n == 0 or codes[n - 1] == 354))
