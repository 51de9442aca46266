"""The trail (`--log`, the `log` key) of real runs: send and sendmail through Postfix,
a queue run, a fetch from Dovecot; each line read back with the tests' one parser
(`helpers.read_trail`) and checked field by field against what the servers did."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import Mailcli, TrailLine, drop, read_trail, run_cli
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.cronhost import CronHost
from tests.servers.fixtures import Mailbox
from tests.servers.ports import free_port
from tests.servers.postfix import Postfix

CRON_OUTPUT = b"From: root\nTo: root\nSubject: nightly\n\nall went well\n"


def one_line(path: Path) -> TrailLine:
    (line,) = read_trail(path)
    stamp = datetime.fromisoformat(line["time"])
    assert stamp.utcoffset() is not None  # ISO 8601 with its offset
    return line


def assert_no_secret(path: Path, box: Mailbox) -> None:
    data = path.read_bytes()
    plain = base64.b64encode(f"\0{box.user}\0{box.password}".encode())
    for secret in (box.password.encode(), plain, base64.b64encode(box.password.encode())):
        assert secret not in data


def queued_as(postfix: Postfix, line: TrailLine) -> None:
    """The queue id logged is the one Postfix gave the message."""
    reply = line["reply"]
    assert reply.startswith("250 ") and f"queued as {line['queue_id']}" in reply
    postfix.wait_for_log(f"{line['queue_id']}: ")


def send(postfix: Postfix, box: Mailbox, log: Path, *rcpts: str) -> int:
    account = Account.submission(postfix, box.user, box.password)
    args = ["send", "--log", str(log), "--from", box.address, "--subject", "s", "--body", "x"]
    return Mailcli(account)(*args, *(f"--to={rcpt}" for rcpt in rcpts)).code


def test_send_leaves_one_line_naming_server_sender_recipient_and_queue_id(
    postfix: Postfix, mailbox: Mailbox, tmp_path: Path
) -> None:
    log = tmp_path / "mailcli.log"
    assert send(postfix, mailbox, log, mailbox.address) == 0
    line = one_line(log)
    assert (line["command"], line["outcome"], line["exit"]) == ("send", "sent", "0")
    assert line["server"] == f"127.0.0.1:{postfix.submission_port}"
    assert line["from"] == mailbox.address
    assert line.recipients() == {mailbox.address: ("250", "2.1.5")}
    assert int(line["size"]) > len("x")
    queued_as(postfix, line)
    assert line.get("error") is None and line.get("spool_id") is None
    assert log.stat().st_mode & 0o777 == 0o600
    assert_no_secret(log, mailbox)


def test_a_partial_refusal_shows_both_replies(
    postfix: Postfix, mailbox: Mailbox, tmp_path: Path
) -> None:
    log = tmp_path / "mailcli.log"
    assert send(postfix, mailbox, log, mailbox.address, postfix.refused_recipient) == 67
    line = one_line(log)
    assert line.recipients() == {
        mailbox.address: ("250", "2.1.5"),
        postfix.refused_recipient: ("550", "5.1.1"),
    }
    assert (line["outcome"], line["exit"]) == ("partial", "67")
    queued_as(postfix, line)


def cron_host(tmp_path: Path, postfix: Postfix, certs: Certs, box: Mailbox) -> CronHost:
    return CronHost(tmp_path, postfix, certs, box)


def configure_logs(cron: CronHost, port: int, top: Path, account: Path | None) -> None:
    """The cron host's config for `port`, with a top-level log and maybe the account's."""
    cron.write_config(port)
    text = cron.config.read_text()
    if account is not None:
        text = text.replace("[accounts.cron]\n", f'[accounts.cron]\nlog = "{account}"\n')
    cron.config.write_text(f'log = "{top}"\n{text}')


def test_sendmail_writes_to_the_accounts_log_which_wins_over_the_top_level_one(
    tmp_path: Path, postfix: Postfix, certs: Certs, mailbox: Mailbox
) -> None:
    cron = cron_host(tmp_path, postfix, certs, mailbox)
    top, own = tmp_path / "top.log", tmp_path / "cron.log"
    configure_logs(cron, postfix.submission_port, top, own)
    done = cron.sendmail("-i", "root", input=CRON_OUTPUT)
    assert (done.returncode, done.stderr) == (0, b"")
    line = one_line(own)
    assert not top.exists()
    assert (line["command"], line["account"], line["outcome"]) == ("sendmail", "cron", "sent")
    assert line["server"] == f"127.0.0.1:{postfix.submission_port}"
    assert line.recipients() == {mailbox.address: ("250", "2.1.5")}
    assert int(line["size"]) >= len(CRON_OUTPUT)
    queued_as(postfix, line)
    assert_no_secret(own, mailbox)


def test_sendmail_queued_then_a_queue_run_each_leave_their_line(
    tmp_path: Path, postfix: Postfix, certs: Certs, mailbox: Mailbox
) -> None:
    cron = cron_host(tmp_path, postfix, certs, mailbox)
    log = tmp_path / "mail.log"
    closed = free_port()
    configure_logs(cron, closed, log, None)  # the top-level log serves the account
    assert cron.sendmail("-i", "root", input=CRON_OUTPUT).returncode == 0
    (queued,) = read_trail(log)
    assert (queued["outcome"], queued["exit"]) == ("queued", "0")
    assert queued["server"] == f"127.0.0.1:{closed}"
    assert queued.recipients() == {mailbox.address: ("-", "-")}
    assert "refused" in queued["error"].lower()
    (entry,) = (path.stem for path in cron.queue_dir().glob("*.json"))
    assert queued["spool_id"] == entry

    configure_logs(cron, postfix.submission_port, log, None)
    done = cron.mailcli("queue", "run")
    assert done.returncode == 0, done.stderr
    ran = read_trail(log)[1]
    assert (ran["command"], ran["spool_id"], ran["outcome"]) == ("queue-run", entry, "delivered")
    assert (ran["account"], ran["from"], ran["exit"]) == ("cron", queued["from"], "0")
    assert ran["server"] == f"127.0.0.1:{postfix.submission_port}"
    assert ran.recipients() == {mailbox.address: ("250", "2.1.5")}
    assert ran["size"] == queued["size"]
    queued_as(postfix, ran)
    assert_no_secret(log, mailbox)


def test_fetch_leaves_one_line_per_run_and_one_for_a_failed_run(
    mailcli: Mailcli, mailbox: Mailbox, tmp_path: Path
) -> None:
    drop(mailbox, range(1, 4), size=500)
    log = tmp_path / "fetch.log"
    maildir = f"maildir:{tmp_path / 'Maildir'}"
    assert mailcli("fetch", "--to", maildir, "--delete", "--log", str(log)).code == 0
    line = one_line(log)
    account = mailcli.account
    assert (line["command"], line["exit"]) == ("fetch", "0")
    assert line["server"] == f"{account.host}:{account.port}"
    assert line["mailbox"] == f"{mailbox.user}@{account.host}"
    counts = [line[key] for key in ("fetched", "skipped", "deleted")]
    assert counts == ["3", "0", "3"]
    delivered = sum(p.stat().st_size for p in (tmp_path / "Maildir" / "new").iterdir())
    assert int(line["bytes"]) >= delivered  # the server's octets, CRLF line ends
    assert mailcli("fetch", "--to", maildir, "--dry-run", "--log", str(log)).code == 0
    assert len(read_trail(log)) == 1  # a dry run writes nothing anywhere

    wrong = mailcli.as_account(
        Account(account.host, account.port, mailbox.user, "nope", account.security, account.cafile)
    )
    assert wrong("fetch", "--to", maildir, "--log", str(log)).code == 77
    failed = read_trail(log)[1]
    assert (failed["exit"], failed.get("fetched")) == ("77", None)
    assert failed["error"]
    assert_no_secret(log, mailbox)
    assert b"nope" not in log.read_bytes()


def test_a_fallback_that_took_the_message_is_named_with_its_server(
    config_file: Path, postfix: Postfix, mailbox: Mailbox, tmp_path: Path
) -> None:
    log = tmp_path / "mail.log"
    closed = free_port()
    config_file.write_text(
        f'log = "{log}"\ndefault_account = "first"\n[accounts.first]\nfallback = ["backup"]\n'
        f'[accounts.first.smtp]\nhost = "127.0.0.1"\nport = {closed}\nsecurity = "none"\n'
        f'[accounts.backup]\nuser = "{mailbox.user}"\n'
        f'password_command = "echo {mailbox.password}"\n[accounts.backup.smtp]\n'
        f'host = "127.0.0.1"\nport = {postfix.submission_port}\nsecurity = "starttls"\n'
        f'cafile = "{postfix.certs.ca_pem}"\n'
    )
    message = ["--from", mailbox.address, "--to", mailbox.address, "--body", "x"]
    assert run_cli(["send", *message]).code == 0
    line = one_line(log)
    assert (line["account"], line["relay"], line["outcome"]) == ("first", "backup", "sent")
    assert line["server"] == f"127.0.0.1:{postfix.submission_port}"
    queued_as(postfix, line)
    assert_no_secret(log, mailbox)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('log = ""\n', "log", 'must be a file path or "syslog"'),
        ("[accounts.a]\nlog = 3\n", "accounts.a.log", "must be a string"),
        ('[accounts.a]\nlog = " "\n', "accounts.a.log", 'must be a file path or "syslog"'),
    ],
)
def test_a_log_key_that_names_nothing_is_78_naming_it(
    config_file: Path, text: str, key: str, problem: str
) -> None:
    config_file.write_text(text)
    result = run_cli(["send", "--log", "x", "--to", "a@example.test", "--body", "x"])
    assert result.code == 78
    assert f"{config_file}: {key}: {problem}" in result.stderr
