"""Property tests (hypothesis) of the header grammar sendmail mode and `send --message`
share: every spelling of a blind-copy field (Bcc, Resent-Bcc; any case, white space
before the colon, folded) is removed AND its addresses are recipients under -t (with
Postfix's resent rule), and no generated input ends in a traceback.

The expectations are computed here with their own patterns, not with mailcli's parser."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailcli.errors import MailcliError
from mailcli.sendmail.arguments import Addressing, parse_args, prepare
from mailcli.smtp.envelope import Outgoing
from mailcli.smtp.rawmessage import prepare_message

EXAMPLES = 500
ADDRESSING = Addressing(domain="example.test", from_addr="Robot <robot@example.test>")
BLIND_LINE = re.compile(rb"(?i)(?:resent-)?bcc[ \t]*:")
FIELD_OR_CONTINUATION = re.compile(rb"[!-9;-~]+[ \t]*:|[ \t]")


@st.composite
def spelling(draw: st.DrawFn, name: str) -> str:
    """`name` in any case, with spaces or tabs before the colon (RFC 5322 obs-syntax)."""
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)
    return cased + draw(st.text(alphabet=" \t", max_size=3)) + ":"


ADDRESS = st.builds(
    "{}{}@{}.test".format,
    st.sampled_from(["ann", "Bob", "x", "a.b"]),
    st.integers(0, 999),
    st.sampled_from(["example", "x", "a-b"]),
)


@st.composite
def address_field(draw: st.DrawFn, name: str) -> tuple[bytes, list[str]]:
    """A field naming 1-3 addresses, maybe folded; the line ends are CRLF here."""
    addresses = draw(st.lists(ADDRESS, min_size=1, max_size=3, unique=True))
    separator = draw(st.sampled_from([", ", ",\r\n ", ",\r\n\t", ","]))
    space = draw(st.sampled_from(["", " ", "\r\n "]))
    line = draw(spelling(name)) + space + separator.join(addresses)
    return line.encode(), addresses


FIELD_NAMES = ["bcc", "resent-bcc", "to", "cc", "resent-to", "resent-cc", "subject"]


@st.composite
def message(draw: st.DrawFn) -> tuple[bytes, dict[str, list[str]]]:
    """A header of random recipient fields (at least one blind one) and a body."""
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=6))
    names.insert(draw(st.integers(0, len(names))), draw(st.sampled_from(["bcc", "resent-bcc"])))
    named: dict[str, list[str]] = {name: [] for name in FIELD_NAMES}
    lines = []
    for name in names:
        line, addresses = draw(address_field(name))
        named[name] += addresses
        lines.append(line)
    body = draw(st.text(alphabet="abc :.\r\n\t", max_size=40)).encode()
    line_end = draw(st.sampled_from([b"\r\n", b"\n"]))
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
    return raw.replace(b"\r\n", line_end), named


def _expected_recipients(named: dict[str, list[str]]) -> list[str]:
    resent = ["resent-to", "resent-cc", "resent-bcc"]
    fields = resent if any(named[name] for name in resent) else ["to", "cc", "bcc"]
    return [address for name in fields for address in named[name]]


def _header_lines(data: bytes) -> list[bytes]:
    """The lines before the blank line (all of them when there is no body)."""
    return data.partition(b"\r\n\r\n")[0].removesuffix(b"\r\n").split(b"\r\n")


@settings(max_examples=EXAMPLES, deadline=None)
@given(generated=message())
def test_every_blind_spelling_is_removed_and_its_addresses_are_recipients(
    generated: tuple[bytes, dict[str, list[str]]],
) -> None:
    raw, named = generated
    for outgoing in (
        prepare(raw, parse_args(["-t", "-i"]), ADDRESSING),
        prepare_message(raw, envelope_from="robot@example.test", rcpt=()),
    ):
        recipients = outgoing.envelope.recipients
        assert len(set(recipients)) == len(recipients)
        assert set(recipients) == set(_expected_recipients(named))
        assert not [line for line in _header_lines(outgoing.data) if BLIND_LINE.match(line)]
        shown = [a for name in FIELD_NAMES if "bcc" not in name for a in named[name]]
        for address in set(named["bcc"] + named["resent-bcc"]) - set(shown):
            assert address.encode() not in outgoing.data


LINES = st.one_of(
    st.sampled_from(
        [
            b"Bcc : x@example.test",
            b"resent-BCC\t:y",
            b"To: bob",
            b"to :",
            b"Cc: , ,",
            b"Subject:",
            b"Subject",
            b" continued",
            b"\t",
            b"",
            b".",
            b"From root Mon Dec  7 04:00:00 2026",
            b">From x",
            b"Filesystem  Size: 20G",
            b"X-\xff: \xfe",
            b"Resent-To: undisclosed-recipients:;",
            b"To: =?utf-8?q?J=C3=B6hn?= <j@example.test>",
            b'To: "a, b" <q@example.test>, (comment) r@example.test',
            b"Bcc: \xc3\xbc@example.test",
        ]
    ),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    lines=st.lists(LINES, max_size=10),
    line_end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    argv=st.sampled_from([["-t"], ["-t", "-i"], ["-i", "root"], ["-t", "bob@example.test"]]),
)
@example(lines=[b"Filesystem  Size  Used", b"/dev/sda1  20G"], line_end=b"\n", argv=["root"])
def test_no_generated_input_ends_in_a_traceback(
    lines: list[bytes], line_end: bytes, argv: list[str]
) -> None:
    raw = line_end.join(lines)
    attempts: list[Callable[[], Outgoing]] = [
        lambda: prepare(raw, parse_args(argv), ADDRESSING),
        lambda: prepare_message(raw, envelope_from=None, rcpt=()),
    ]
    for attempt in attempts:
        try:
            outgoing = attempt()
        except MailcliError as exc:
            assert exc.exit_status in (64, 65)
            continue
        header = _header_lines(outgoing.data)
        assert all(FIELD_OR_CONTINUATION.match(line) for line in header), header
        assert not [line for line in header if BLIND_LINE.match(line)]
