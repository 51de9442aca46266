"""sendmail mode without a server: argument parsing, addressing, message rules."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailcli.errors import DataError, UsageError
from mailcli.sendmail.arguments import Addressing, SendmailArgs, parse_args, prepare, qualify

CRON_MESSAGE = (
    b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> backup\n"
    b"Content-Type: text/plain; charset=UTF-8\n\nbackup done\n.\nnot the end\n"
)
ADDRESSING = Addressing(
    domain="example.test",
    aliases={"root": "admin@example.test"},
    from_addr="Host Cron <cron@example.test>",
)


def test_debian_cron_command_line() -> None:
    parsed = parse_args(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice"])
    assert parsed == SendmailArgs(full_name="CronDaemon", ignore_dots=True, recipients=["alice"])


def test_cronie_command_line() -> None:
    parsed = parse_args(["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"])
    assert parsed == SendmailArgs(
        extract_recipients=True, sender="root", full_name="CronDaemon", ignore_dots=True
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-f", "<>", "x@y"], SendmailArgs(sender="<>", recipients=["x@y"])),
        (
            ["-fbounce@y", "-ti"],
            SendmailArgs(sender="bounce@y", extract_recipients=True, ignore_dots=True),
        ),
        (["-a", "work", "x"], SendmailArgs(account="work", recipients=["x"])),
        (["x", "-oi", "y"], SendmailArgs(ignore_dots=True, recipients=["x", "y"])),
        (["-O", "DeliveryMode=b", "-ODeliveryMode=i", "-bm", "x"], SendmailArgs(recipients=["x"])),
        (["--", "-odd@example.test"], SendmailArgs(recipients=["-odd@example.test"])),
        (
            ["-F", "Jöhn Dœ", "-v", "x"],
            SendmailArgs(full_name="Jöhn Dœ", verbose=True, recipients=["x"]),
        ),
    ],
)
def test_option_forms(argv: list[str], expected: SendmailArgs) -> None:
    assert parse_args(argv) == expected


@pytest.mark.parametrize("argv", [["-Z"], ["-bp"], ["-bs"], ["-f"], ["-x", "root"]])
def test_unknown_or_unsupported_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)


@pytest.mark.parametrize(
    ("name", "addressing", "expected"),
    [
        ("root", ADDRESSING, ["admin@example.test"]),
        ("bob", ADDRESSING, ["bob@example.test"]),
        ("bob@other.test", ADDRESSING, ["bob@other.test"]),
        ("<bob@other.test>", ADDRESSING, ["bob@other.test"]),
        (
            "anyone",
            Addressing(aliases={"default": "ops@x.test, oncall"}, domain="d.test"),
            ["ops@x.test", "oncall@d.test"],
        ),
        ("www-data", Addressing(aliases={"default": "catchall@x.test"}), ["catchall@x.test"]),
    ],
)
def test_aliases_then_domain(name: str, addressing: Addressing, expected: list[str]) -> None:
    assert qualify(name, addressing) == expected


def test_a_name_without_domain_or_alias_is_65() -> None:
    with pytest.raises(DataError, match="'root' has no domain") as caught:
        qualify("root", Addressing())
    assert "[aliases]" in (caught.value.hint or "")


def test_cron_message_gets_aliased_recipient_and_keeps_its_headers() -> None:
    out = prepare(CRON_MESSAGE, parse_args(["-FCronDaemon", "-i", "-oem", "root"]), ADDRESSING)
    assert out.envelope.sender == "cron@example.test"
    assert out.envelope.recipients == ("admin@example.test",)
    assert out.data.startswith(b"Date: ")
    assert b"\r\nFrom: root (Cron Daemon)\r\nTo: root\r\n" in out.data
    assert out.data.endswith(b"\r\n\r\nbackup done\r\n.\r\nnot the end\r\n")  # -i: dots kept


def test_without_i_a_lone_dot_ends_the_message() -> None:
    out = prepare(CRON_MESSAGE, parse_args(["root"]), ADDRESSING)
    assert out.data.endswith(b"\r\n\r\nbackup done\r\n")


def test_t_reads_recipients_adds_arguments_and_drops_bcc() -> None:
    raw = b"To: bob, carl@other.test\nCc: root\nBcc: secret\nSubject: s\n\nhi\n"
    out = prepare(raw, parse_args(["-t", "-i", "extra@x.test"]), ADDRESSING)
    assert out.envelope.recipients == (
        "extra@x.test",
        "bob@example.test",
        "carl@other.test",
        "admin@example.test",
        "secret@example.test",
    )
    assert b"Bcc" not in out.data and b"secret" not in out.data


def test_from_added_with_f_name_and_null_sender() -> None:
    raw = b"To: bob@x.test\nSubject: s\n\nhi\n"
    out = prepare(raw, parse_args(["-f", "<>", "-F", "Backup Robot", "-t"]), ADDRESSING)
    assert out.envelope.sender == ""
    message = email.message_from_bytes(out.data, policy=email.policy.default)
    assert str(message["From"]) == "Backup Robot <cron@example.test>"
    assert message["Message-ID"] and message["Date"]


@pytest.mark.parametrize("full_name", [[], ["-F", "Backup Robot"]])
def test_a_null_sender_without_an_account_address_is_from_mailer_daemon(
    full_name: list[str],
) -> None:
    """As Postfix's cleanup adds it: with `from` a pattern (or unset) and -f <> there is no
    address to put in the From field a message without one gets, so MAILER-DAEMON@domain
    (never an empty From:)."""
    raw = b"To: bob@x.test\nSubject: s\n\nhi\n"
    patterned = Addressing(domain="example.test", from_addr=None)
    out = prepare(raw, parse_args(["-f", "<>", *full_name, "-t"]), patterned)
    assert out.envelope.sender == ""
    message = email.message_from_bytes(out.data, policy=email.policy.default)
    shown = "MAILER-DAEMON@example.test"
    assert str(message["From"]) == (f"Backup Robot <{shown}>" if full_name else shown)


def test_a_null_sender_without_an_address_or_a_domain_is_65() -> None:
    with pytest.raises(DataError) as raised:
        prepare(b"Subject: s\n\nx\n", parse_args(["-f", "<>", "bob@x.test"]), Addressing())
    assert "From" in raised.value.message


def test_unqualified_f_is_qualified_with_the_domain() -> None:
    out = prepare(b"Subject: s\n\nx\n", parse_args(["-f", "root", "bob"]), ADDRESSING)
    assert out.envelope.sender == "root@example.test"


def test_no_recipients_without_t_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no recipients"):
        prepare(b"Subject: s\n\nx\n", parse_args(["-i"]), ADDRESSING)


def test_header_injection_through_f_name_is_refused() -> None:
    with pytest.raises(DataError, match="header injection"):
        prepare(b"Subject: s\n\nx\n", parse_args(["-F", "x\nBcc: y@z", "bob"]), ADDRESSING)


# -- what counts as the header section, and which fields name recipients ---------------

DF_OUTPUT = (
    b"Filesystem      Size  Used Avail Use% Mounted on\n"
    b"/dev/sda1        20G  5.1G   14G  27% /\n"
    b"tmpfs: none\n"
)


def _header_and_body(data: bytes) -> tuple[bytes, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_body_only_input_is_the_body_with_from_date_and_message_id_added() -> None:
    out = prepare(DF_OUTPUT, parse_args(["ops@example.org"]), ADDRESSING)
    assert out.envelope == ("cron@example.test", ("ops@example.org",))
    head, body = _header_and_body(out.data)
    assert body == DF_OUTPUT.replace(b"\n", b"\r\n")  # every byte, line ends aside
    names = [line.partition(b":")[0] for line in head.split(b"\r\n")]
    assert names == [b"From", b"Date", b"Message-ID"]  # no To: Postfix adds none either
    assert head.startswith(b"From: Host Cron <cron@example.test>\r\n")


def test_body_only_input_under_t_names_no_recipients() -> None:
    with pytest.raises(DataError, match="names no recipients"):
        prepare(DF_OUTPUT, parse_args(["-t"]), ADDRESSING)


def test_body_only_input_under_t_goes_to_the_command_line_recipients() -> None:
    out = prepare(DF_OUTPUT, parse_args(["-t", "root"]), ADDRESSING)
    assert out.envelope.recipients == ("admin@example.test",)


@pytest.mark.parametrize(
    ("raw", "subject", "body"),
    [
        (b"Subject:\n\nbody\n", b"Subject:", b"body\r\n"),
        (b"Subject:\nbody\n", b"Subject:", b"body\r\n"),  # a line that is no field ends it
        (b"Subject: s\nhello world\n", b"Subject: s", b"hello world\r\n"),
        (b"Subject : s\n\nbody\n", b"Subject : s", b"body\r\n"),
        (b"Filesystem  Size: 20G\n", None, b"Filesystem  Size: 20G\r\n"),
        (b" Subject: s\n\nbody\n", None, b" Subject: s\r\n\r\nbody\r\n"),
        (b"\nSubject: s\n", None, b"Subject: s\r\n"),
        (b"From root  Mon Dec  7 04:00:00 2026\nSubject: s\n\nbody\n", b"Subject: s", b"body\r\n"),
        (b">From root Mon Dec  7 04:00:00 2026\nbody\n", None, b"body\r\n"),
        (b"", None, b""),
    ],
)
def test_where_the_header_section_ends(raw: bytes, subject: bytes | None, body: bytes) -> None:
    out = prepare(raw, parse_args(["bob"]), ADDRESSING)
    head, sent_body = _header_and_body(out.data)
    assert sent_body == body
    lines = head.split(b"\r\n")
    assert [line for line in lines if line.lower().startswith(b"subject")] == (
        [subject] if subject else []
    )
    assert b"From root" not in out.data


BCC_SPELLINGS = [
    b"Bcc: secret",
    b"Bcc : secret",
    b"bcc:secret",
    b"BCC\t:  secret",
    b"Bcc:\n secret,\n\tcarl@other.test",
]


@pytest.mark.parametrize("field", BCC_SPELLINGS)
def test_every_bcc_spelling_is_a_recipient_under_t_and_never_transmitted(field: bytes) -> None:
    raw = b"To: bob\n" + field + b"\nCc: root\nSubject: s\n\nhi\n"
    out = prepare(raw, parse_args(["-t"]), ADDRESSING)
    assert "secret@example.test" in out.envelope.recipients
    assert {"bob@example.test", "admin@example.test"} <= set(out.envelope.recipients)
    assert b"secret" not in out.data and b"carl" not in out.data
    assert b"\r\nCc: root\r\nSubject: s\r\n\r\nhi\r\n" in out.data


@pytest.mark.parametrize("field", [b"To : bob", b"to:bob", b"TO\t: bob", b"Cc :\n bob"])
def test_to_and_cc_in_the_obsolete_spellings_are_recipients_under_t(field: bytes) -> None:
    out = prepare(field + b"\nSubject: s\n\nhi\n", parse_args(["-t"]), ADDRESSING)
    assert out.envelope.recipients == ("bob@example.test",)
    assert out.data.endswith(field.replace(b"\n", b"\r\n") + b"\r\nSubject: s\r\n\r\nhi\r\n")


RESENT = (
    b"From: ann@example.test\nTo: original@example.test\nBcc: old-blind@example.test\n"
    b"Subject: s\nResent-From: cron@example.test\nResent-To: new@example.test\n"
    b"resent-bcc : hidden@example.test\nResent-Cc: root\n\nbody\n"
)


def test_t_takes_the_resent_recipients_when_there_are_any_and_strips_resent_bcc() -> None:
    out = prepare(RESENT, parse_args(["-t", "extra@x.test"]), ADDRESSING)
    assert out.envelope.recipients == (
        "extra@x.test",
        "new@example.test",
        "hidden@example.test",
        "admin@example.test",
    )
    assert b"hidden" not in out.data and b"old-blind" not in out.data
    assert b"\r\nTo: original@example.test\r\n" in out.data  # the headers stay as given
    assert b"\r\nResent-To: new@example.test\r\n" in out.data


def test_resent_bcc_is_stripped_without_t_too() -> None:
    out = prepare(RESENT, parse_args(["bob"]), ADDRESSING)
    assert out.envelope.recipients == ("bob@example.test",)
    assert b"hidden" not in out.data and b"bcc" not in out.data.lower()


def test_resent_headers_without_resent_recipients_leave_to_cc_bcc_in_charge() -> None:
    raw = b"Resent-From: a@x.test\nResent-Date: Mon, 7 Dec 2026 04:00:00 +0000\nTo: bob\n\nb\n"
    out = prepare(raw, parse_args(["-t"]), ADDRESSING)
    assert out.envelope.recipients == ("bob@example.test",)
