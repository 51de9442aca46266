"""RFC 2920 PIPELINING: a transaction's commands in one write, the replies matched in order.

When the server offers PIPELINING, MAIL FROM, every RCPT TO and DATA go out together
(in groups of at most `GROUP` commands, so that neither side can block writing while
the other does) and one reply is read per command, in order. Every reply of a group is
read before anything is decided, so the conversation stays in step whatever was refused:
- MAIL refused: its error (a conforming server refuses the rest of the group too).
- No RCPT accepted: nothing is sent. A conforming server refuses the pipelined DATA
  (554 or 503, RFC 2920 section 3.1); one that answers 354 anyway gets a lone "." at
  once, the data phase ended without the message, and the result says nothing was sent
  (its reply to that empty data is read and ignored: there is no recipient to take it).
- DATA refused while some RCPT was accepted: DATA's error, as in lock-step.
- 421 to any command: the server is closing; 75 with its reply, the connection closed.
- The connection lost before every reply is in: 75; nothing is reported as sent.

With CHUNKING (RFC 3030) also offered, a message of at most `ONE_CHUNK` octets without
attachments goes in the same write as the envelope, as `BDAT n LAST` and the message's
exact octets (not dot-stuffed), with QUIT after it when `quit`: the whole transaction is
one round trip. A server reads a chunk whatever it answers, so refusals keep it in step;
with no recipient accepted it refuses the chunk and nothing is delivered. A larger
message is not sent before the recipients' answers.

Otherwise the message follows DATA's 354 as in lock-step (`send_message`): dot-stuffed,
in pieces. When no other message follows on the session (`quit`), QUIT goes in the same
write as the final dot (or the chunk). The message's own reply decides the outcome; the
221 is read after it, since RFC 5321 4.1.1.10 says a client SHOULD wait for it and it
costs no round trip of its own (the server answers QUIT as soon as it has answered the
message); a failure there changes nothing, the message's reply being in. Without
PIPELINING the session stays lock-step.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence

from mailcli.errors import MailcliError, TempFailError
from mailcli.network import dot_stuff, upload_piece
from mailcli.smtp.envelope import Outgoing
from mailcli.smtp.phases import SmtpPhase
from mailcli.smtp.reply import Reply, ReplyCode
from mailcli.smtp.result import SendResult
from mailcli.smtp.wire import TracedSMTP, close_quietly, decoded, error_from_smtp_reply
from mailcli.transcript import Transcript

GROUP = 100  # commands per write: their replies fit any socket buffer, so no deadlock
ONE_CHUNK = 64 * 1024  # a message up to this size goes with BDAT in the envelope's write
DATA_CHUNK = 256 * 1024


def pipelined_transaction(
    smtp: TracedSMTP,
    outgoing: Outgoing,
    options: Sequence[str],
    transcript: Transcript,
    reached: Callable[[SmtpPhase], object],
    *,
    quit: bool,
    rcpt_options: Callable[[str], Sequence[str]] = lambda recipient: (),
) -> SendResult:
    """MAIL, every RCPT (with `rcpt_options(recipient)`) and DATA together; then the
    message (and QUIT with its final dot when `quit`). A small message to a server with
    CHUNKING goes in the same write as BDAT instead (`_chunked`). Raises like the
    lock-step transaction; see the module's docstring."""
    envelope = outgoing.envelope
    mail = f"mail FROM:{smtplib.quoteaddr(envelope.sender)}" + "".join(f" {o}" for o in options)
    envelope_lines = [mail, *(_rcpt_line(r, rcpt_options(r)) for r in envelope.recipients)]
    encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
    if _fits_one_chunk(smtp, outgoing):
        return _chunked(smtp, outgoing, envelope_lines, encoding, transcript, reached, quit=quit)
    commands = [*envelope_lines, "DATA"]
    mail_reply, *rcpt_replies, data_reply = exchange(smtp, commands, transcript, encoding)
    result = _recipients(outgoing, rcpt_replies)
    mail_refused = mail_reply.code != ReplyCode.COMPLETED
    if data_reply.code == ReplyCode.START_INPUT and (mail_refused or not result.accepted):
        _end_data_without_message(smtp, transcript)
    _check_mail(mail_reply, reached)
    if not result.accepted:
        return result
    if data_reply.code != ReplyCode.START_INPUT:
        raise error_from_smtp_reply("DATA", data_reply)
    result.reply = send_message(smtp, outgoing, transcript, quit=quit)
    return result


def _rcpt_line(recipient: str, options: Sequence[str]) -> str:
    return f"rcpt TO:{smtplib.quoteaddr(recipient)}" + "".join(f" {o}" for o in options)


def _recipients(outgoing: Outgoing, rcpt_replies: Sequence[Reply]) -> SendResult:
    result = SendResult(envelope_from=outgoing.envelope.sender)
    for recipient, reply in zip(outgoing.envelope.recipients, rcpt_replies, strict=True):
        result.record(recipient, reply)
    return result


def _check_mail(mail_reply: Reply, reached: Callable[[SmtpPhase], object]) -> None:
    """MAIL's refusal is the transaction's error; else the phases are reported."""
    if mail_reply.code != ReplyCode.COMPLETED:
        raise error_from_smtp_reply("MAIL FROM", mail_reply)
    reached("mail")
    reached("rcpt")


def _fits_one_chunk(smtp: TracedSMTP, outgoing: Outgoing) -> bool:
    """RFC 3030 CHUNKING for a small message without attachments and few recipients:
    its exact size is known and sending it before the recipients' answers wastes little."""
    return (
        smtp.has_extn("chunking")
        and not outgoing.attachments
        and len(outgoing.data) <= ONE_CHUNK
        and len(outgoing.envelope.recipients) < GROUP
    )


def _chunked(
    smtp: TracedSMTP,
    outgoing: Outgoing,
    envelope_lines: list[str],
    encoding: str,
    transcript: Transcript,
    reached: Callable[[SmtpPhase], object],
    *,
    quit: bool,
) -> SendResult:
    """MAIL, every RCPT, `BDAT n LAST` with the message (not dot-stuffed: BDAT counts
    octets), and QUIT when `quit`, in one write; then a reply per command. A server
    reads a BDAT chunk whatever it answers, so a refusal keeps the conversation in
    step; with no recipient accepted it refuses the chunk and nothing is delivered."""
    commands = [*envelope_lines, f"BDAT {len(outgoing.data)} LAST"]
    transcript.info(f"pipelined: {len(commands) + quit} lines and the message in one write")
    for line in commands:
        transcript.sent(line)
    _trace_message(outgoing, transcript)
    if quit:
        transcript.sent("QUIT")
    ending = b"QUIT\r\n" if quit else b""
    wire = "".join(f"{line}\r\n" for line in commands).encode(encoding)
    smtp.connection.sendall(wire + outgoing.data + ending)
    mail_reply, *rcpt_replies, bdat_reply = [read_reply(smtp) for _ in commands]
    if quit:
        _read_goodbye(smtp)
    result = _recipients(outgoing, rcpt_replies)
    _check_mail(mail_reply, reached)
    if not result.accepted:
        return result
    if bdat_reply.code != ReplyCode.COMPLETED:
        raise error_from_smtp_reply("the message", bdat_reply)
    result.reply = bdat_reply
    return result


def _trace_message(outgoing: Outgoing, transcript: Transcript) -> None:
    if transcript.show_data:
        _trace_lines(outgoing.data, transcript)
    else:
        transcript.data_summary("send", outgoing.data.count(b"\n"), len(outgoing.data))


def _trace_lines(data: bytes, transcript: Transcript) -> None:
    """`--trace-data`: each CRLF line of `data` as sent."""
    for line in data.split(b"\r\n")[:-1]:
        transcript.data_line("send", line)


def exchange(
    smtp: TracedSMTP, commands: Sequence[str], transcript: Transcript, encoding: str = "ascii"
) -> list[Reply]:
    """Each group of commands in one write, then its replies in order."""
    replies: list[Reply] = []
    for start in range(0, len(commands), GROUP):
        group = commands[start : start + GROUP]
        write_together(smtp, group, transcript, encoding)
        replies += [read_reply(smtp) for _ in group]
    return replies


def write_together(
    smtp: TracedSMTP, lines: Sequence[str], transcript: Transcript, encoding: str = "ascii"
) -> None:
    """The lines in one write; the transcript marks them as one group."""
    if len(lines) > 1:
        transcript.info(f"pipelined: {len(lines)} lines in one write")
    for line in lines:
        transcript.sent(line)
    smtp.connection.sendall("".join(f"{line}\r\n" for line in lines).encode(encoding))


def read_reply(smtp: TracedSMTP) -> Reply:
    """The next reply; a 421 (the server is closing) ends the session with 75."""
    reply = Reply(*decoded(smtp.getreply()))
    if reply.code == ReplyCode.CLOSING:
        close_quietly(smtp)
        raise TempFailError(f"the server is closing the connection: {reply}")
    return reply


def _end_data_without_message(smtp: TracedSMTP, transcript: Transcript) -> None:
    """A 354 nobody should have sent (no recipient, or no sender): a lone dot ends the
    data phase with nothing in it; the reply to that is read and has no say."""
    transcript.info("no recipient accepted: the data phase ends without the message")
    write_together(smtp, ["."], transcript)
    read_reply(smtp)


def send_message(
    smtp: TracedSMTP, outgoing: Outgoing, transcript: Transcript, *, quit: bool
) -> Reply:
    """After a 354: the message dot-stuffed, then the final dot (with QUIT when `quit`);
    the message's reply. An interrupted body can only be closed on: the server reads
    everything up to the final dot as the message (and delivers nothing)."""
    try:
        lines = _send_body(smtp, outgoing, transcript)
    except BaseException:
        close_quietly(smtp)
        raise
    if not transcript.show_data:
        transcript.data_summary("send", lines, outgoing.size)
    write_together(smtp, [".", "QUIT"] if quit else ["."], transcript)
    reply = Reply(*decoded(smtp.getreply()))
    if quit:
        _read_goodbye(smtp)
    if reply.code != ReplyCode.COMPLETED:
        raise error_from_smtp_reply("the message", reply)
    return reply


def _read_goodbye(smtp: TracedSMTP) -> None:
    """QUIT's 221 after the message's reply, then close; its absence changes nothing."""
    try:
        smtp.getreply()
    except (smtplib.SMTPException, OSError, MailcliError):
        pass
    finally:
        close_quietly(smtp)


def _send_body(smtp: TracedSMTP, outgoing: Outgoing, transcript: Transcript) -> int:
    """The message dot-stuffed, piece by piece; returns the number of lines. Each write
    must finish within the timeout: pieces of `upload_piece` let a slow upload through
    as long as it moves (`network.Pace`). Every piece starts at a line start, so stuffing
    piece by piece is exact."""
    piece_size = min(DATA_CHUNK, upload_piece(smtp.pace.timeout))
    lines = 0
    for piece in outgoing.chunks():
        stuffed = dot_stuff(piece)
        lines += piece.count(b"\n")
        if transcript.show_data:
            _trace_lines(stuffed, transcript)
        view = memoryview(stuffed)
        for offset in range(0, len(view), piece_size):
            smtp.connection.sendall(view[offset : offset + piece_size])
    return lines
