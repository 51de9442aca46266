"""`mailcli fetch` against the throwaway Dovecot: exactly once, whatever happens."""

from __future__ import annotations

import collections
import json
import mailbox
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import MAILCLI, Result, run_cli
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.scripted import Conn, ScriptedServer


def message(number: int, size: int = 0) -> bytes:
    body = f"body of {number}\nFrom the start of a line\n.a dot line\n".encode()
    body += b"x" * size + b"\n" if size else b""
    return (
        f"From: s@example.test\nTo: u@example.test\nSubject: n{number}\n"
        f"Message-ID: <n{number}@example.test>\n\n"
    ).encode() + body


class Fetch:
    def __init__(self, dovecot: Dovecot, certs: Certs, box: Mailbox, home: Path) -> None:
        self.args = [
            "--host",
            "127.0.0.1",
            "--port",
            str(dovecot.pop3_port),
            "--cafile",
            str(certs.ca_pem),
            "--user",
            box.user,
        ]
        self.env = {"MAILCLI_PASSWORD": box.password}
        self.maildir = home / "Maildir"
        self.dovecot, self.box = dovecot, box

    def __call__(self, *extra: str) -> Result:
        return run_cli(["fetch", *extra, *self.args], env=self.env)

    def json(self, *extra: str) -> dict:  # type: ignore[type-arg]
        result = self(*extra, "--json")
        assert result.code == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def server_count(self) -> int:
        result = run_cli(["stat", "--json", *self.args], env=self.env)
        return int(json.loads(result.stdout)["messages"])

    def drop(self, numbers: range, size: int = 0) -> None:
        for number in numbers:
            self.dovecot.drop_message(self.box.user, message(number, size))

    def delivered(self) -> list[bytes]:
        return [
            path.read_bytes()
            for sub in ("new", "cur")
            for path in sorted((self.maildir / sub).iterdir())
        ]


@pytest.fixture
def fetcher(dovecot: Dovecot, certs: Certs, mailbox: Mailbox, isolated_environment: Path) -> Fetch:
    return Fetch(dovecot, certs, mailbox, isolated_environment)


def message_ids(contents: list[bytes]) -> collections.Counter[str]:
    ids = collections.Counter()
    for data in contents:
        for line in data.splitlines():
            if line.startswith(b"Message-ID: "):
                ids[line.split(b" ", 1)[1].decode()] += 1
    return ids


def test_300_messages_byte_exact_then_only_new_ones(fetcher: Fetch) -> None:
    fetcher.drop(range(300))
    summary = fetcher.json()
    assert (summary["fetched"], summary["deleted"], summary["skipped"]) == (300, 0, 0)
    stored = {message(n) for n in range(300)}
    assert set(fetcher.delivered()) == stored  # LF line ends, byte for byte
    assert all(
        (fetcher.maildir / "new" / p).stat().st_mode & 0o777 == 0o600
        for p in os.listdir(fetcher.maildir / "new")
    )
    assert fetcher.json()["fetched"] == 0  # a rerun fetches nothing
    fetcher.drop(range(300, 305))
    assert fetcher.json()["fetched"] == 5
    assert len(fetcher.delivered()) == 305
    assert fetcher.server_count() == 305  # keep is the default


def test_delete_empties_the_server_including_earlier_fetches(fetcher: Fetch) -> None:
    fetcher.drop(range(20))
    assert fetcher.json()["fetched"] == 20
    fetcher.drop(range(20, 25))
    summary = fetcher.json("--delete")
    assert (summary["fetched"], summary["deleted"]) == (5, 25)
    assert fetcher.server_count() == 0
    assert len(fetcher.delivered()) == 25


def test_no_new_mail_is_success_and_silent_when_piped(fetcher: Fetch) -> None:
    result = fetcher()
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert (fetcher.maildir / "new").is_dir()  # created when missing


def test_mbox_destination_with_mboxrd_quoting(fetcher: Fetch, tmp_path: Path) -> None:
    fetcher.drop(range(3))
    target = tmp_path / "mail" / "inbox.mbox"
    assert fetcher.json("--to", f"mbox:{target}")["fetched"] == 3
    box = mailbox.mbox(target)
    subjects = sorted(str(m["Subject"]) for m in box)
    assert subjects == ["n0", "n1", "n2"]
    assert b"\n>From the start of a line\n" in target.read_bytes()
    assert all(m.get_payload().startswith("body of") for m in box)
    assert not list(target.parent.glob("*.lock"))  # the dot-lock is released


def test_mda_destination_and_a_failing_mda(fetcher: Fetch, tmp_path: Path) -> None:
    fetcher.drop(range(5))
    out = tmp_path / "mda"
    out.mkdir()
    counter = tmp_path / "count"
    counter.write_text("0")
    mda = (
        f"n=$(cat {counter}); echo $((n+1)) > {counter}; "
        f"if [ $n -eq 2 ]; then exit 9; fi; cat > {out}/msg.$n"
    )
    failed = fetcher("--to", f"mda:{mda}", "--delete")
    assert failed.code == 73
    assert "MDA exited with status 9" in failed.stderr
    assert sorted(os.listdir(out)) == ["msg.0", "msg.1"]
    assert fetcher.server_count() == 5  # no QUIT after a failure: nothing deleted yet
    done = fetcher.json("--to", f"mda:{mda}", "--delete")
    assert done["fetched"] == 3 and done["deleted"] == 5
    delivered = [(out / name).read_bytes() for name in os.listdir(out)]
    assert sorted(message_ids(delivered).values()) == [1] * 5
    assert fetcher.server_count() == 0


def test_max_size_skips_and_a_higher_limit_fetches_later(fetcher: Fetch) -> None:
    fetcher.drop(range(3))
    fetcher.drop(range(3, 4), size=50_000)
    summary = fetcher.json("--max-size", "10000")
    assert (summary["fetched"], summary["skipped"]) == (3, 1)
    assert summary["skipped_messages"][0]["size"] > 50_000
    assert fetcher.json()["fetched"] == 1
    assert len(fetcher.delivered()) == 4


def test_limit_and_dry_run(fetcher: Fetch) -> None:
    fetcher.drop(range(10))
    assert fetcher.json("--dry-run")["would_fetch"] == 10
    assert not (fetcher.maildir / "new").exists() or not os.listdir(fetcher.maildir / "new")
    assert fetcher.json("--limit", "4")["fetched"] == 4
    assert fetcher.json()["fetched"] == 6


def test_a_second_concurrent_fetch_exits_75(fetcher: Fetch, tmp_path: Path) -> None:
    fetcher.drop(range(2))
    started = tmp_path / "started"
    slow_mda = f"touch {started}; sleep 3; cat > /dev/null"  # holds the run (and its lock)
    env = {**os.environ, **fetcher.env}
    first = subprocess.Popen(
        [*MAILCLI, "fetch", "--to", f"mda:{slow_mda}", *fetcher.args],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(
        [*MAILCLI, "fetch", *fetcher.args], env=env, capture_output=True, check=False
    )
    assert second.returncode == 75
    assert f"another fetch for this account is running (pid {first.pid})".encode() in (
        second.stderr
    )
    assert first.wait(timeout=60) == 0
    assert fetcher.json()["fetched"] == 0  # the first one fetched both


def test_connection_dropped_mid_retr_leaves_no_file_and_sends_no_dele(
    tmp_path: Path, isolated_environment: Path
) -> None:
    def dropping(conn: Conn) -> None:
        conn.send("+OK ready")
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if verb == "CAPA":
                conn.send("+OK", "USER", "UIDL", ".")
            elif verb == "LIST":
                conn.send("+OK", "1 40", "2 40", ".")
            elif verb == "UIDL":
                conn.send("+OK", "1 a", "2 b", ".")
            elif verb == "RETR" and line.endswith(" 2"):
                conn.send("+OK", "Subject: half", "", "first line")
                return
            elif verb == "RETR":
                conn.send("+OK", "Subject: whole", "", "all of it", ".")
            else:
                conn.send("+OK")

    with ScriptedServer(dropping) as server:
        result = run_cli(
            [
                "fetch",
                "--delete",
                "--host",
                server.host,
                "--port",
                str(server.port),
                "--security",
                "none",
                "--user",
                "u",
            ],
            env={"MAILCLI_PASSWORD": "pw"},
        )
    assert result.code == 75
    maildir = isolated_environment / "Maildir"
    assert [p.read_bytes() for p in (maildir / "new").iterdir()] == [
        b"Subject: whole\n\nall of it\n"
    ]
    assert os.listdir(maildir / "tmp") == []
    assert not any(line.upper().startswith("DELE") for line in server.received)


def test_a_server_without_uidl_gets_everything_each_time_with_a_warning(
    isolated_environment: Path,
) -> None:
    def no_uidl(conn: Conn) -> None:
        conn.send("+OK ready")
        while line := conn.recv_line():
            verb = line.split(" ", 1)[0].upper()
            if verb == "CAPA":
                conn.send("+OK", "USER", ".")
            elif verb == "LIST":
                conn.send("+OK", "1 30", ".")
            elif verb == "UIDL":
                conn.send("-ERR no UIDL here")
            elif verb == "RETR":
                conn.send("+OK", "Subject: only", "", "body", ".")
            elif verb == "QUIT":
                conn.send("+OK bye")
                return
            else:
                conn.send("+OK")

    with ScriptedServer(no_uidl) as server:
        args = [
            "fetch",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--security",
            "none",
            "--user",
            "u",
            "-v",
        ]
        first = run_cli(args, env={"MAILCLI_PASSWORD": "pw"})
        second = run_cli(args, env={"MAILCLI_PASSWORD": "pw"})
    for result in (first, second):
        assert result.code == 0, result.stderr
        assert "the server has no UIDL" in result.stderr
        assert "fetched 1 message(s)" in result.stderr
    assert len(os.listdir(isolated_environment / "Maildir" / "new")) == 2


def test_keep_mode_into_mbox_never_refetches_on_later_runs(fetcher: Fetch, tmp_path: Path) -> None:
    """mbox has no file names to recognise messages by: the state alone must remember."""
    fetcher.drop(range(3))
    target = tmp_path / "inbox.mbox"
    for _ in range(4):
        assert fetcher("--to", f"mbox:{target}").code == 0
    fetcher.drop(range(3, 4))
    assert fetcher.json("--to", f"mbox:{target}")["fetched"] == 1
    assert len(mailbox.mbox(target)) == 4
