"""Property tests (hypothesis) on everything that parses input from people or servers:
never a traceback; either a clean result or a MailcliError with its documented status."""

from __future__ import annotations

import base64
import io
import poplib
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mailcli.config import parse_config
from mailcli.errors import MailcliError
from mailcli.pop3.commands import _ints, _pair, parse_message_set
from mailcli.pop3.multiline import UnstuffingCopier
from mailcli.pop3.wire import error_from_pop3_reply
from mailcli.sendmail.arguments import Addressing, parse_args, prepare
from mailcli.smtp.rawmessage import RawMessage
from mailcli.transcript import Transcript
from tests.helpers import run_cli

CLI_EXAMPLES = 300
EXAMPLES = 500

NASTY_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "a@b.example",
            "Ann <ann@example.org>",
            "x@y\r\nBcc: evil@example.org",
            "a\0b@c.d",
            "=?utf-8?q?J=C3=B6hn?= <j@example.org>",
            "üser@bücher.example",
            '"Doe, J" <j@x.y>',
            "<>",
            "a@b, c@d",
            "@",
            "a@",
            "@b",
            "a" * 400 + "@example.org",
            "a@b\n",
            "",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=200, max_size=2000),
)
ALLOWED = {0, 64, 65, 66}


def assert_clean(code: int, stderr: str) -> None:
    assert code in ALLOWED, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr


@settings(
    max_examples=CLI_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sender=NASTY_TEXT, to=NASTY_TEXT, subject=NASTY_TEXT, reply_to=NASTY_TEXT)
def test_send_addresses_and_subjects(sender: str, to: str, subject: str, reply_to: str) -> None:
    args = [
        "send",
        "--dry-run",
        "--from",
        sender,
        "--to",
        to,
        "--subject",
        subject,
        "--body",
        "x",
    ] + (["--reply-to", reply_to] if reply_to else [])
    result = run_cli(args)
    assert_clean(result.code, result.stderr)
    if any(c in value for value in (sender, to, subject, reply_to) for c in "\r\n\0"):
        assert result.code != 0  # header injection is never let through


@settings(max_examples=CLI_EXAMPLES, deadline=None)
@given(headers=st.lists(NASTY_TEXT, max_size=4), envelope=NASTY_TEXT, rcpt=NASTY_TEXT)
def test_send_header_options_and_envelope(headers: list[str], envelope: str, rcpt: str) -> None:
    args = [
        "send",
        "--dry-run",
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
        "--body",
        "x",
        "--envelope-from",
        envelope,
        "--rcpt",
        rcpt,
    ]
    for header in headers:
        args += ["--header", header]
    result = run_cli(args)
    assert_clean(result.code, result.stderr)
    if result.code == 0:
        head = result.stdout.split("\n\n", 2)[1] if "\n\n" in result.stdout else ""
        assert "\nBcc:" not in head


@settings(max_examples=EXAMPLES)
@given(
    argv=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "-t",
                    "-i",
                    "-oi",
                    "-odi",
                    "-oem",
                    "-f",
                    "-F",
                    "-B8BITMIME",
                    "-bm",
                    "-bp",
                    "--",
                    "-a",
                    "-v",
                    "-ti",
                    "-fx@y",
                    "-FName",
                    "-O",
                    "-X",
                ]
            ),
            st.text(max_size=20),
        ),
        max_size=8,
    )
)
def test_sendmail_arguments(argv: list[str]) -> None:
    try:
        parse_args(argv)
    except MailcliError as exc:
        assert exc.exit_status == 64


@settings(max_examples=EXAMPLES)
@given(
    raw=st.binary(max_size=400), recipients=st.lists(NASTY_TEXT, max_size=3), extract=st.booleans()
)
def test_sendmail_message_preparation(raw: bytes, recipients: list[str], extract: bool) -> None:
    argv = (["-t"] if extract else []) + ["-i", "--", *recipients]
    addressing = Addressing(domain="example.test", aliases={"root": "r@example.test"})
    try:
        prepare(raw, parse_args(argv), addressing)
    except MailcliError as exc:
        assert exc.exit_status in (64, 65)


@settings(max_examples=EXAMPLES)
@given(raw=st.binary(max_size=600))
def test_raw_message_parsing(raw: bytes) -> None:
    try:
        message = RawMessage.parse(raw)
    except MailcliError as exc:
        assert exc.exit_status == 65
        return
    assert b"bcc:" not in message.transmitted(sender="a@b").split(b"\r\n\r\n")[0].lower()


POP3_LINE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["1 501", "1 abc", "x 1", "", " ", "1", "1 501 extra", "-1 2", "99999999999999999999 1"]
    ),
)


@settings(max_examples=EXAMPLES)
@given(line=POP3_LINE, verb=st.sampled_from(["LIST", "UIDL"]))
@example(line="٣ 5", verb="LIST")
def test_list_and_uidl_lines(line: str, verb: str) -> None:
    try:
        number, value = _pair(line, verb)
    except MailcliError as exc:
        assert exc.exit_status == 76
        return
    assert number >= 0 and value


@settings(max_examples=EXAMPLES)
@given(fields=st.lists(st.text(max_size=12), max_size=4))
def test_stat_replies(fields: list[str]) -> None:
    try:
        count, octets = _ints(fields, "STAT")
    except MailcliError as exc:
        assert exc.exit_status == 76
        return
    assert count >= 0 and octets >= 0


@settings(max_examples=EXAMPLES)
@given(reply=st.binary(max_size=80))
def test_negative_replies_and_response_codes(reply: bytes) -> None:
    error = error_from_pop3_reply(poplib.error_proto(reply))
    assert isinstance(error, MailcliError)
    assert error.exit_status in (69, 75, 76, 77)


@settings(max_examples=EXAMPLES)
@given(wire=st.binary(max_size=3000))
def test_multiline_reader_on_arbitrary_bytes(wire: bytes) -> None:
    source = io.BufferedReader(io.BytesIO(wire), buffer_size=64)
    try:
        UnstuffingCopier(source, lambda data: None, limit=10_000).run()
    except MailcliError as exc:
        assert exc.exit_status in (75, 76)


@settings(max_examples=EXAMPLES)
@given(specs=st.lists(st.text(max_size=10), max_size=4))
@example(specs=["¹"])  # found by this test: "¹".isdigit() is True, int("¹") fails
def test_message_sets(specs: list[str]) -> None:
    try:
        numbers = parse_message_set(specs)
    except MailcliError as exc:
        assert exc.exit_status == 64
        return
    assert all(n >= 1 for n in numbers)


@settings(max_examples=EXAMPLES)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=6, max_size=30
    ),
    mechanism=st.sampled_from(["PLAIN", "LOGIN", "XOAUTH2"]),
)
def test_transcript_never_shows_a_secret(secret: str, mechanism: str) -> None:
    # A "secret" that is part of the fixed text (the mask itself, a verb) proves nothing.
    assume(secret.strip("*") and secret not in "-> PASS AUTH XOAUTH2 334 VXNlcm5hbWU6 235 ok")
    lines: list[str] = []
    transcript = Transcript(lines.append)
    encoded = base64.b64encode(f"\0user\0{secret}".encode()).decode()
    transcript.sent(f"PASS {secret}")
    transcript.sent(f"AUTH {mechanism} {encoded}")
    transcript.received("334 VXNlcm5hbWU6")
    transcript.sent(base64.b64encode(secret.encode()).decode())
    transcript.received("235 ok")
    shown = "\n".join(lines)
    for form in (secret, encoded, base64.b64encode(secret.encode()).decode()):
        assert form not in shown


TOML_VALUE = st.recursive(
    st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none().map(lambda _: 1)),
    lambda children: st.dictionaries(
        st.sampled_from(
            [
                "accounts",
                "smtp",
                "pop3",
                "fetch",
                "host",
                "port",
                "security",
                "user",
                "from",
                "default_account",
                "aliases",
                "delete",
                "to",
                "x",
            ]
        ),
        children,
        max_size=4,
    ),
    max_leaves=12,
)


@settings(max_examples=EXAMPLES)
@given(
    document=st.dictionaries(
        st.sampled_from(["accounts", "aliases", "default_account", "junk"]), TOML_VALUE, max_size=3
    )
)
def test_config_documents(document: dict) -> None:  # type: ignore[type-arg]
    try:
        parse_config(document, Path("fuzz.toml"))
    except MailcliError as exc:
        assert exc.exit_status == 78
        assert exc.message.startswith("fuzz.toml: ")
