"""The POP3 commands against the throwaway Dovecot: every answer checked against what
the server holds (messages dropped straight into the Maildir)."""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Mailcli
from tests.servers.accounts import Account, Security, numbered_message
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox


def message(number: int, body: bytes = b"hello\n") -> bytes:
    return numbered_message(
        number,
        body,
        subject=f"message {number}",
        sender=f"Sender {number} <s{number}@example.test>",
        date=DATES[number],
    )


DATES = {
    n: f"{day}, 0{n} Jan 2024 10:00:00 +0000"
    for n, day in zip(range(1, 5), ["Mon", "Tue", "Wed", "Thu"], strict=True)
}


def on_the_wire(data: bytes) -> bytes:
    """What Dovecot serves for a message stored with LF line ends."""
    return data.replace(b"\n", b"\r\n")


@pytest.fixture
def filled(mailcli: Mailcli, mailbox: Mailbox) -> tuple[Mailcli, list[bytes]]:
    messages = [
        message(1),
        message(2, b".starts with a dot\n..two dots\n.\nend\n"),
        message(3, "8-bit: Grüße, 世界\n".encode()),
        message(4, b"x" * 5000 + b"\n" + b"y" * 70000 + b"\n"),
    ]
    mailbox.drop(*messages)
    return mailcli, messages


def test_stat_and_list_octets_equal_the_servers(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, messages = filled
    sizes = [len(on_the_wire(m)) for m in messages]
    assert pop.json("stat") == {"messages": 4, "octets": sum(sizes)}
    assert pop("stat").stdout == f"4\t{sum(sizes)}\n"
    listed = pop.json("list")["messages"]
    assert [(m["number"], m["size"]) for m in listed] == list(enumerate(sizes, 1))
    assert all(m["uid"] for m in listed) and len({m["uid"] for m in listed}) == 4
    assert pop("list", "2").stdout.split("\t")[:2] == ["2", str(sizes[1])]


def test_retr_gives_the_stored_bytes_with_crlf(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, messages = filled
    for number, data in enumerate(messages, 1):
        done = subprocess.run(
            [*MAILCLI, "retr", str(number), *pop.account.args()],
            capture_output=True,
            env={**_base_env(), **pop.account.env()},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == on_the_wire(data), number


def test_retr_to_a_file_with_lf_and_by_uid(
    filled: tuple[Mailcli, list[bytes]], tmp_path: Path
) -> None:
    pop, messages = filled
    uid = pop.json("uidl", "2")["messages"][0]["uid"]
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "two.eml"
    assert pop("retr", "--uid", uid, "-o", str(target), "--lf").code == 0
    assert target.read_bytes() == messages[1]
    assert target.stat().st_mode & 0o777 == 0o600
    assert list(target.parent.iterdir()) == [target]  # no temporary left behind


def test_list_headers_decoded(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, _ = filled
    listed = pop.json("list", "--headers")["messages"]
    assert listed[0]["from"] == "Sender 1 <s1@example.test>"
    assert listed[2]["subject"] == "message 3"
    assert listed[1]["date"] == DATES[2]


def test_top_shows_headers_and_lines(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, messages = filled
    done = subprocess.run(
        [*MAILCLI, "top", "2", "2", *pop.account.args()],
        capture_output=True,
        env={**_base_env(), **pop.account.env()},
        check=False,
    )
    head = on_the_wire(messages[1]).split(b"\r\n\r\n")[0]
    assert done.stdout == head + b"\r\n\r\n.starts with a dot\r\n..two dots\r\n"


def test_no_such_message_is_66(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, _ = filled
    for command in (
        ["retr", "9"],
        ["list", "9"],
        ["top", "9"],
        ["dele", "9"],
        ["retr", "--uid", "nope"],
    ):
        result = pop(*command)
        assert result.code == 66, command
        assert "no message" in result.stderr


def test_dele_takes_effect_only_after_quit(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, _ = filled
    dry = pop.json("dele", "1-2", "--dry-run")
    assert dry["dry_run"] and dry["deleted"] == [] and len(dry["marked"]) == 2
    assert pop.json("stat")["messages"] == 4
    uid3 = pop.json("uidl", "3")["messages"][0]["uid"]
    done = pop.json("dele", "--uid", uid3)
    assert done["deleted"] == [{"number": 3, "uid": uid3}]
    assert done["quit"].startswith("+OK")
    assert pop.json("stat")["messages"] == 3
    assert uid3 not in [m["uid"] for m in pop.json("uidl")["messages"]]
    assert pop("dele", "1", "9").code == 66  # one bad number: nothing deleted at all
    assert pop.json("stat")["messages"] == 3
    assert pop("dele", "--all").code == 0
    assert pop.json("stat") == {"messages": 0, "octets": 0}


def test_shell_rset_and_end_of_input_keep_messages(filled: tuple[Mailcli, list[bytes]]) -> None:
    pop, _ = filled
    session = pop("shell", input="stat\ndele 1\nlist\nrset\nlist\nquit\n")
    assert session.code == 0, session.stderr
    lines = session.stdout.splitlines()
    assert lines[0].startswith("+OK 4 ")
    assert lines[1] == "+OK Marked to be deleted."
    assert lines[2].startswith("+OK 3 messages")
    assert pop.json("stat")["messages"] == 4
    unfinished = pop("shell", input="dele 1\ndele 2\n")  # no quit
    assert "2 message(s) marked for deletion were NOT deleted" in unfinished.stderr
    assert pop.json("stat")["messages"] == 4
    committed = pop("shell", input="dele 1\nquit\n")
    assert "deleted 1 message(s)" in committed.stderr
    assert pop.json("stat")["messages"] == 3


def test_shell_shows_replies_dot_stuffed_as_sent(mailcli: Mailcli, mailbox: Mailbox) -> None:
    """The telnet session: a body line "." arrives as ".." and is shown so, only the
    terminator is a lone "."; every line ends in LF; a CR inside a line is shown as \\r."""
    mailbox.drop(b"Subject: dots\n\n.\n.x\nbare\rCR\nend\n")
    session = mailcli("shell", input="retr 1\ntop 1 1\nstat\nquit\n")
    assert session.code == 0, session.stderr
    assert "\r" not in session.stdout
    lines = session.stdout.split("\n")
    assert lines[0].startswith("+OK")
    assert lines[1:8] == ["Subject: dots", "", "..", "..x", "bare\\rCR", "end", "."]
    assert lines[8].startswith("+OK")  # TOP 1 1: the headers, the blank line, one line
    assert lines[9:13] == ["Subject: dots", "", "..", "."]
    assert lines[13].startswith("+OK 1 ")  # STAT
    assert lines[14].startswith("+OK") and lines[15:] == [""]  # QUIT; output ends in LF
    assert lines.count(".") == 2  # one terminator per multi-line reply, no other


@pytest.mark.parametrize("auth", ["user", "apop", "plain"])
def test_each_login_method_with_masked_trace(mailcli: Mailcli, mailbox: Mailbox, auth: str) -> None:
    result = mailcli("stat", "--auth", auth, "--trace")
    assert result.code == 0, result.stderr
    forms = [
        mailbox.password,
        base64.b64encode(mailbox.password.encode()).decode(),
        base64.b64encode(f"\0{mailbox.user}\0{mailbox.password}".encode()).decode(),
    ]
    assert not any(form in result.stderr for form in forms)
    expected = {
        "user": "~> PASS ********",
        "apop": f"~> APOP {mailbox.user} ********",
        "plain": "~> AUTH PLAIN ********",
    }[auth]
    assert expected in result.stderr


def test_default_login_is_sasl_plain_after_stls(mailcli: Mailcli) -> None:
    trace = mailcli("stat", "--trace").stderr
    assert trace.index("-> STLS") < trace.index("~> AUTH PLAIN ********")


@pytest.mark.pop3_account(security="tls")
def test_implicit_tls(mailcli: Mailcli, mailbox: Mailbox) -> None:
    mailbox.drop(message(1))
    result = mailcli("stat", "--trace")
    assert result.code == 0, result.stderr
    assert "<~ +OK" in result.stderr and "-> STLS" not in result.stderr


def test_wrong_password_is_77(mailcli: Mailcli) -> None:
    pop = mailcli.as_account(replace(mailcli.account, password="wrong"))
    for auth in ("user", "plain", "apop"):
        result = pop("stat", "--auth", auth)
        assert result.code == 77, (auth, result.stderr)
        assert "authentication" in result.stderr


def test_untrusted_certificate_is_77(
    dovecot: Dovecot, untrusted_certs: Certs, mailbox: Mailbox
) -> None:
    modes: tuple[Security | None, ...] = (None, "tls")
    for security in modes:
        account = Account.pop3(dovecot, mailbox.user, mailbox.password, security=security)
        result = Mailcli(replace(account, cafile=untrusted_certs.ca_pem))("stat")
        assert result.code == 77, result.stderr
        assert "not trusted" in result.stderr


def test_retr_of_20_mb_streams_in_little_memory(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    line = b"0123456789" * 7 + b"\n"
    body = line * (20 * 1024 * 1024 // len(line))
    mailbox.drop(message(1, body))
    pop = mailcli
    target = tmp_path / "big.eml"
    # VmHWM, not getrusage: ru_maxrss carries the forking parent's peak across exec.
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['mailcli', 'retr', '1', '-o', {str(target)!r}, *{pop.account.args()!r}]\n"
        "try:\n    runpy.run_module('mailcli', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(code, peak.split()[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**_base_env(), **pop.account.env()},
        check=False,
    )
    code, peak_kib = done.stdout.split()
    assert code == "0", done.stderr
    assert target.stat().st_size == len(on_the_wire(message(1, body)))
    assert int(peak_kib) < 64 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB for a 20 MB message"


def _base_env() -> dict[str, str]:
    import os

    return dict(os.environ)
