"""Transcript format and masking: every mechanism's secrets are hidden."""

from __future__ import annotations

import base64

import pytest

from mailcli.transcript import MASK, Transcript


def conversation(steps: list[tuple[str, str]]) -> list[str]:
    lines: list[str] = []
    transcript = Transcript(lines.append)
    for direction, text in steps:
        if direction == "tls":
            transcript.tls = True
        elif direction == "info":
            transcript.info(text)
        else:
            getattr(transcript, direction)(text.encode() + b"\r\n")
    return lines


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRET = "hunter2-Secret"
PLAIN = b64(f"\0alice\0{SECRET}")


def test_the_pop3_session_format() -> None:
    lines = conversation(
        [
            ("info", "connected to 127.0.0.1:110"),
            ("received", "+OK Dovecot ready."),
            ("sent", "STLS"),
            ("received", "+OK Begin TLS negotiation now."),
            ("tls", ""),
            ("sent", "USER alice"),
            ("received", "+OK"),
            ("sent", f"PASS {SECRET}"),
            ("received", "+OK Logged in."),
            ("sent", "STAT"),
        ]
    )
    assert lines == [
        "== connected to 127.0.0.1:110",
        "<- +OK Dovecot ready.",
        "-> STLS",
        "<- +OK Begin TLS negotiation now.",
        "~> USER alice",
        "<~ +OK",
        f"~> PASS {MASK}",
        "<~ +OK Logged in.",
        "~> STAT",
    ]


@pytest.mark.parametrize(
    ("steps", "expected_sent"),
    [
        pytest.param(
            [("sent", f"APOP alice {'c4c9334bac560ecc979e58001b3e22fb'}")],
            [f"-> APOP alice {MASK}"],
            id="apop",
        ),
        pytest.param(
            [("sent", f"AUTH PLAIN {PLAIN}"), ("received", "+OK Logged in.")],
            [f"-> AUTH PLAIN {MASK}"],
            id="pop3-sasl-plain-initial",
        ),
        pytest.param(
            [
                ("sent", "AUTH PLAIN"),
                ("received", "+ "),
                ("sent", PLAIN),
                ("received", "+OK"),
                ("sent", "STAT"),
            ],
            ["-> AUTH PLAIN", f"-> {MASK}", "-> STAT"],
            id="pop3-sasl-plain-continued",
        ),
        pytest.param(
            [
                ("sent", f"AUTH PLAIN {PLAIN}"),
                ("received", "235 2.7.0 ok"),
                ("sent", "MAIL FROM:<a@b>"),
            ],
            [f"-> AUTH PLAIN {MASK}", "-> MAIL FROM:<a@b>"],
            id="smtp-plain",
        ),
        pytest.param(
            [
                ("sent", "AUTH LOGIN"),
                ("received", "334 VXNlcm5hbWU6"),
                ("sent", b64("alice")),
                ("received", "334 UGFzc3dvcmQ6"),
                ("sent", b64(SECRET)),
                ("received", "235 2.7.0 ok"),
                ("sent", "QUIT"),
            ],
            ["-> AUTH LOGIN", f"-> {MASK}", f"-> {MASK}", "-> QUIT"],
            id="smtp-login",
        ),
        pytest.param(
            [
                ("sent", f"AUTH LOGIN {b64('alice')}"),
                ("received", "334 UGFzc3dvcmQ6"),
                ("sent", b64(SECRET)),
                ("received", "235 ok"),
            ],
            [f"-> AUTH LOGIN {MASK}", f"-> {MASK}"],
            id="smtp-login-initial",
        ),
        pytest.param(
            [
                ("sent", "AUTH CRAM-MD5"),
                ("received", "334 PDE4OTYuNjk3MTcwOTUyQHBvc3Q+"),
                ("sent", b64("alice 6d5d5ab5fa4d2e8fc8c6aa44e4a0c4ea")),
                ("received", "235 ok"),
            ],
            ["-> AUTH CRAM-MD5", f"-> {MASK}"],
            id="cram-md5",
        ),
        pytest.param(
            [
                ("sent", f"AUTH XOAUTH2 {b64('user=a' + chr(1) + 'auth=Bearer ' + SECRET)}"),
                ("received", "334 eyJzdGF0dXMiOiI0MDEifQ=="),
                ("sent", ""),
                ("received", "535 5.7.8 failed"),
            ],
            [f"-> AUTH XOAUTH2 {MASK}", f"-> {MASK}"],
            id="xoauth2-error-continuation",
        ),
        pytest.param(
            [
                ("sent", "AUTH PLAIN"),
                ("received", "+ "),
                ("sent", "*"),
                ("received", "-ERR cancelled"),
                ("sent", "USER bob"),
            ],
            ["-> AUTH PLAIN", "-> *", "-> USER bob"],
            id="cancel",
        ),
        pytest.param([("sent", f"pass {SECRET}")], [f"-> PASS {MASK}"], id="lower-case-verb"),
    ],
)
def test_secrets_are_masked(steps: list[tuple[str, str]], expected_sent: list[str]) -> None:
    lines = conversation(steps)
    assert [line for line in lines if line.startswith("->")] == expected_sent
    joined = "\n".join(lines)
    for secret in (SECRET, b64(SECRET), PLAIN, "6d5d5ab5fa4d2e8fc8c6aa44e4a0c4ea"):
        assert secret not in joined


def test_plus_ok_ends_a_pop3_sasl_exchange() -> None:
    lines = conversation([("sent", "AUTH PLAIN"), ("received", "+OK"), ("sent", "LIST")])
    assert lines[-1] == "-> LIST"


def test_timing_and_data_summary() -> None:
    ticks = iter([10.0, 10.25, 11.5])
    lines: list[str] = []
    transcript = Transcript(lines.append, show_time=True, clock=lambda: next(ticks))
    transcript.sent(b"DATA\r\n")
    transcript.data_summary("send", 12, 345)
    assert lines == ["   0.250 -> DATA", "   1.500 -> [message: 12 lines, 345 octets]"]


def test_body_lines_only_with_show_data() -> None:
    quiet: list[str] = []
    Transcript(quiet.append).data_line("recv", b"Subject: hi\r\n")
    loud: list[str] = []
    Transcript(loud.append, show_data=True).data_line("recv", b"Subject: hi\r\n")
    assert (quiet, loud) == ([], ["<- Subject: hi"])


def test_disabled_transcript_does_nothing() -> None:
    transcript = Transcript()
    assert not transcript.enabled
    transcript.sent(b"PASS x\r\n")  # no sink: no error, no output
