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


def test_unqualified_f_is_qualified_with_the_domain() -> None:
    out = prepare(b"Subject: s\n\nx\n", parse_args(["-f", "root", "bob"]), ADDRESSING)
    assert out.envelope.sender == "root@example.test"


def test_no_recipients_without_t_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no recipients"):
        prepare(b"Subject: s\n\nx\n", parse_args(["-i"]), ADDRESSING)


def test_header_injection_through_f_name_is_refused() -> None:
    with pytest.raises(DataError, match="header injection"):
        prepare(b"Subject: s\n\nx\n", parse_args(["-F", "x\nBcc: y@z", "bob"]), ADDRESSING)
