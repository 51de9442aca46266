"""`fetch --filter`: mpop's header-filter contract against the real Dovecot.

Each filter is a small shell script that reads the header on its stdin and answers by
its exit status (0 deliver, 1 delete unread, 2 leave, 3+ error); the timeout case blocks
on a fifo nobody writes, so it ends only by mailcli's deadline, never by the machine's
speed."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import Mailcli, drop, run_cli
from tests.servers.accounts import numbered_message as message
from tests.servers.fixtures import Mailbox


@pytest.fixture
def maildir(isolated_environment: Path) -> Path:
    return isolated_environment / "Maildir"


def delivered_subjects(maildir: Path) -> list[str]:
    subjects = []
    for sub in ("new", "cur"):
        for path in sorted((maildir / sub).iterdir()):
            for line in path.read_bytes().splitlines():
                if line.startswith(b"Subject: "):
                    subjects.append(line[9:].decode())
    return sorted(subjects)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def judge_by_subject(tmp_path: Path, verdicts: dict[str, int], *, otherwise: int = 0) -> Path:
    cases = "".join(f"  *'Subject: {s}'*) exit {code} ;;\n" for s, code in verdicts.items())
    return script(
        tmp_path,
        "judge",
        'header=$(cat)\nprintf "%s\\n--\\n" "$header" >> "$(dirname "$0")/seen"\n'
        f'case "$header" in\n{cases}  *) exit {otherwise} ;;\nesac\n',
    )


def test_deliver_delete_and_skip_follow_the_exit_status(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path, tmp_path: Path
) -> None:
    drop(mailbox, range(4))
    judge = judge_by_subject(tmp_path, {"n1": 1, "n2": 2})
    planned = mailcli.json("fetch", "--filter", str(judge), "--dry-run")
    assert planned["would_fetch"] == 4 and not (tmp_path / "seen").exists()  # not run
    summary = mailcli.json("fetch", "--filter", str(judge))
    assert (summary["fetched"], summary["deleted"], summary["filter_skipped"]) == (2, 1, 1)
    assert delivered_subjects(maildir) == ["n0", "n3"]
    seen = (tmp_path / "seen").read_text()
    assert seen.count("Message-ID:") == 4  # each header once, before any download
    assert "body of" not in seen  # TOP n 0: the header section only
    # n1 is gone from the server unread; n2 is still there and judged again next time.
    assert mailcli.server_count() == 3
    again = mailcli.json("fetch", "--filter", str(judge))
    assert (again["fetched"], again["deleted"], again["filter_skipped"]) == (0, 0, 1)
    assert (tmp_path / "seen").read_text().count("Subject: n2") == 2
    # Without the filter, the skipped message is simply new mail.
    assert mailcli.json("fetch")["fetched"] == 1
    assert delivered_subjects(maildir) == ["n0", "n2", "n3"]


def test_a_filter_error_leaves_that_message_and_the_rest_on_the_server_75(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path, tmp_path: Path
) -> None:
    drop(mailbox, range(4))
    judge = judge_by_subject(tmp_path, {"n1": 1, "n2": 3})
    result = mailcli("fetch", "--filter", str(judge))
    assert result.code == 75, result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("mailcli: error: the filter exited with")
    assert "status 3 on message 3" in error[0] and "1 not judged after it" in error[0]
    assert delivered_subjects(maildir) == ["n0"]  # judged before the failure: handled
    assert mailcli.server_count() == 3  # n1 deleted as judged; n2 and n3 untouched
    assert (tmp_path / "seen").read_text().count("Message-ID:") == 3  # n3 never judged


def test_a_filter_that_does_not_answer_is_killed_at_the_timeout_75(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path, tmp_path: Path
) -> None:
    drop(mailbox, range(2))
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    # The shell's child blocks opening a fifo no one ever opens for writing.
    blocked = script(
        tmp_path, "blocked", f'cat > /dev/null\necho $$ > "{tmp_path}/pid"\ncat "{fifo}"\n'
    )
    result = mailcli("fetch", "--timeout", "3", "--filter", str(blocked))
    assert result.code == 75, result.stderr
    assert "did not answer within 3 s on message 1" in result.stderr
    assert not (maildir / "new").exists() or not list((maildir / "new").iterdir())
    assert mailcli.server_count() == 2
    pid = int((tmp_path / "pid").read_text())
    assert ended(pid)  # the script (and its cat, in its session) was killed


def ended(pid: int) -> bool:
    """The process is gone or a zombie, within 10 s of SIGKILL (which is at once)."""
    for _ in range(1000):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False


def test_sender_and_size_substitutions_stay_inert(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path, tmp_path: Path
) -> None:
    # A short path: named three times, a long tmp_path would push the Return-Path over
    # 254 characters, which is MAILER-DAEMON by the length rule, not by this test's.
    shelter = Path(tempfile.mkdtemp(prefix="f", dir="/tmp"))
    try:
        _substitutions_stay_inert(mailcli, mailbox, tmp_path, shelter / "p")
    finally:
        shutil.rmtree(shelter)


def _substitutions_stay_inert(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path, planted: Path
) -> None:
    hostile = (
        f"Return-Path: <$(touch {planted})`touch {planted}`;touch {planted}\"'@evil.example>\n"
    ).encode()
    data = hostile + message(0)
    mailbox.drop(data)
    out = tmp_path / "args"
    record = script(
        tmp_path,
        "record",
        f'cat > /dev/null\nprintf "%s|" "$@" > "{out}"\n'
        f'printf "%s" "$SENDER" > "{tmp_path}/sender"\n',
    )
    summary = mailcli.json("fetch", "--filter", f"{record} %F '%F' \"%F\" %S")
    assert summary["fetched"] == 1
    assert not planted.exists()
    args = out.read_text().split("|")[:-1]
    assert len(args) == 4  # each %F stayed one word, quoted or not
    sender = args[0]
    assert args[1] == args[2] == sender == (tmp_path / "sender").read_text()
    assert set(sender) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@_-+/"
    )
    assert sender.endswith("@evil.example")
    assert int(args[3]) == mailcli.json("stat")["octets"]  # %S: the size LIST gives


def test_the_filter_gets_no_secret_in_its_environment(
    mailcli: Mailcli, mailbox: Mailbox, maildir: Path, tmp_path: Path
) -> None:
    drop(mailbox, range(1))
    dump = script(tmp_path, "dump", f'cat > /dev/null\nenv > "{tmp_path}/env"\n')
    result = mailcli("fetch", "--filter", str(dump), env={"MAILCLI_SMTP_TOKEN": "tok-123"})
    assert result.code == 0, result.stderr
    environment = (tmp_path / "env").read_text()
    assert mailbox.password not in environment
    assert "MAILCLI_PASSWORD" not in environment and "tok-123" not in environment
    assert "\nSENDER=MAILER-DAEMON\n" in environment  # no Return-Path in this message


def test_a_missing_filter_program_is_78_before_any_connection(
    isolated_environment: Path, tmp_path: Path
) -> None:
    # The key in the config, a server that does not exist: 78, and nothing written.
    config = tmp_path / "config.toml"
    config.write_text(
        '[accounts.work]\nuser = "u"\n[accounts.work.pop3]\nhost = "127.0.0.1"\nport = 9\n'
        '[accounts.work.fetch]\nfilter = "no-such-filter-program --check %F"\n'
    )
    result = run_cli(["--config", str(config), "fetch"], env={"MAILCLI_PASSWORD": "x"})
    assert result.code == 78, result.stderr
    assert result.stderr.startswith("mailcli: error: filter: command not found: ")
    assert "no-such-filter-program" in result.stderr
    assert not (isolated_environment / "Maildir").exists()
    for missing in ("/nonexistent/filter", str(tmp_path)):
        failed = run_cli(["--config", str(config), "fetch", "--filter", missing])
        assert failed.code == 78, failed.stderr
