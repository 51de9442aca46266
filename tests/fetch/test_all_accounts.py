"""`fetch --all-accounts` and `fetch -a A -a B`: several mailboxes of the real Dovecot in
one run, each in its own process, with one summary row each and one exit status by the
documented rule (`mailcli.fetch.accounts.most_severe`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from mailcli.fetch.accounts import most_severe
from tests.helpers import MAILCLI, drop, run_process
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.ports import free_port

STRACE = shutil.which("strace")


def maildir_of(home: Path, name: str) -> Path:
    return home / "mail" / name


def account_table(name: str, box: Mailbox | None, dovecot: Dovecot, home: Path, **keys: str) -> str:
    """An account logging in to `box` on Dovecot (STLS, the test CA), into its own Maildir."""
    if box is None:  # no POP3 server: only SMTP
        return f'[accounts.{name}]\nuser = "x"\n[accounts.{name}.smtp]\nhost = "127.0.0.1"\n'
    settings = {
        "host": json.dumps("127.0.0.1"),
        "port": keys.pop("port", str(dovecot.pop3_port)),
        "cafile": json.dumps(str(dovecot.certs.ca_pem)),
    }
    password = keys.pop("password", box.password)
    fetch = {"to": json.dumps(f"maildir:{maildir_of(home, name)}"), **keys}
    return (
        f'[accounts.{name}]\nuser = "{box.user}"\n'
        f"password_command = {json.dumps(f'echo {password}')}\n"
        f"[accounts.{name}.pop3]\n"
        + "".join(f"{k} = {v}\n" for k, v in settings.items())
        + f"[accounts.{name}.fetch]\n"
        + "".join(f"{k} = {v}\n" for k, v in fetch.items())
    )


def subjects(maildir: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for sub in ("new", "cur"):
        if not (maildir / sub).is_dir():
            continue
        for path in (maildir / sub).iterdir():
            for line in path.read_bytes().splitlines():
                if line.startswith(b"Subject: "):
                    found[line[9:].decode()] += 1
    return found


class Setup:
    """Two good mailboxes (3 and 2 messages), one with a wrong password, one on a port
    where nothing listens, one account without a POP3 server."""

    def __init__(self, home: Path, dovecot: Dovecot) -> None:
        self.home = home
        self.good = make_mailbox(dovecot), make_mailbox(dovecot)
        drop(self.good[0], range(3))
        drop(self.good[1], range(10, 12))
        wrong = make_mailbox(dovecot)
        drop(wrong, range(20, 21))
        self.config = home / "config.toml"
        self.config.write_text(
            account_table("one", self.good[0], dovecot, home)
            + account_table("two", self.good[1], dovecot, home)
            + account_table("wrong", wrong, dovecot, home, password="not-it")
            + account_table("down", wrong, dovecot, home, port=str(free_port()))
            + account_table("smtponly", None, dovecot, home)
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return run_process(
            ["--config", str(self.config), "fetch", *args], env={**os.environ, **(env or {})}
        )

    def delivered(self) -> tuple[Counter[str], Counter[str]]:
        return subjects(maildir_of(self.home, "one")), subjects(maildir_of(self.home, "two"))


EXPECTED = (Counter({"n0": 1, "n1": 1, "n2": 1}), Counter({"n10": 1, "n11": 1}))


@pytest.fixture
def setup(isolated_environment: Path, dovecot: Dovecot) -> Setup:
    return Setup(isolated_environment, dovecot)


def rows(stdout: bytes) -> dict[str, list[str]]:
    lines = [line.split("\t") for line in stdout.decode().splitlines()]
    return {row[0]: row[1:] for row in lines if row and row[0] != "account"}


def test_every_account_in_one_run_with_a_row_each_and_the_most_severe_status(
    setup: Setup,
) -> None:
    done = setup.run("--all-accounts", "--jobs", "2")
    stderr = done.stderr.decode()
    assert done.returncode == 77, stderr  # noperm (wrong password) beats unavailable (down)
    table = rows(done.stdout)
    assert table == {
        "one": ["3", "0", "0", str(table["one"][3]), "ok"],
        "two": ["2", "0", "0", str(table["two"][3]), "ok"],
        "wrong": ["0", "0", "0", "0", "noperm"],
        "down": ["0", "0", "0", "0", "unavailable"],
        "smtponly": ["0", "0", "0", "0", "skipped"],
    }
    assert int(table["one"][3]) > 0
    assert setup.delivered() == EXPECTED
    lines = stderr.splitlines()
    assert any(line.startswith("mailcli: wrong: error: ") for line in lines), stderr
    assert any(line.startswith("mailcli: down: error: ") for line in lines), stderr
    assert "mailcli: smtponly: note: no POP3 server" in stderr
    assert "Traceback" not in stderr and "not-it" not in stderr
    # --json: each account's status; a rerun fetches nothing new.
    again = setup.run("--all-accounts", "--json")
    assert again.returncode == 77
    documents = {d["account"]: d for d in json.loads(again.stdout)}
    assert documents["one"]["status"] == "ok" and documents["one"]["fetched"] == 0
    assert (documents["wrong"]["status"], documents["wrong"]["exit_status"]) == ("noperm", 77)
    assert documents["wrong"]["error"]
    assert documents["down"]["exit_status"] == 69
    assert documents["smtponly"]["status"] == "skipped"
    assert setup.delivered() == EXPECTED


def test_repeated_a_fetches_those_accounts_and_a_single_a_is_unchanged(setup: Setup) -> None:
    done = setup.run("-a", "one", "-a", "two", "-a", "one")
    assert done.returncode == 0, done.stderr
    assert sorted(rows(done.stdout)) == ["one", "two"]  # each once, in one run
    assert setup.delivered() == EXPECTED
    traced = setup.run("-a", "one", "-a", "two", "--trace")
    assert traced.returncode == 0, traced.stderr
    lines = traced.stderr.decode().splitlines()
    assert any(line.startswith("one: ") for line in lines), lines  # each conversation...
    assert any(line.startswith("two: ") for line in lines), lines
    assert all(line.startswith(("one: ", "two: ", "mailcli: ")) for line in lines)  # ...named
    assert not any(box.password in traced.stderr.decode() for box in setup.good)
    single = run_process(["--config", str(setup.config), "-a", "wrong", "fetch"])
    assert single.returncode == 77
    assert single.stderr.decode().startswith("mailcli: error: ")  # no prefix, no table
    assert single.stdout == b""


def test_bad_account_choices_are_refused_before_any_connection(setup: Setup) -> None:
    unknown = setup.run("-a", "one", "-a", "nosuch")
    assert unknown.returncode == 78
    assert b"no account 'nosuch'" in unknown.stderr
    assert not maildir_of(setup.home, "one").exists()  # nothing fetched for "one" either
    both = setup.run("--all-accounts", "-a", "one")
    assert both.returncode == 64, both.stderr
    before = run_process(["--config", str(setup.config), "-a", "one", "fetch", "--all-accounts"])
    assert before.returncode == 64, before.stderr
    assert not maildir_of(setup.home, "one").exists()
    # $MAILCLI_ACCOUNT is a default, not a choice: --all-accounts takes it.
    from_env = setup.run("--all-accounts", env={"MAILCLI_ACCOUNT": "one"})
    assert from_env.returncode == 77
    assert setup.delivered() == EXPECTED


def test_the_exit_rule() -> None:
    assert most_severe([]) == 0
    assert most_severe([0, 0]) == 0
    assert most_severe([75, 78, 77]) == 78
    assert most_severe([75, 69, 0]) == 69
    assert most_severe([74, 77]) == 77
    assert most_severe([143, 0]) == 143  # no rule for it: still a failure


@pytest.mark.skipif(STRACE is None and os.environ.get("CI") != "true", reason="needs strace")
@pytest.mark.parametrize("when", [1, 2, 3])
def test_kill_9_of_every_account_mid_run_then_a_rerun_delivers_each_message_once(
    setup: Setup, when: int
) -> None:
    """Each account's process is killed on entry to its N-th rename (strace counts per
    process): a Maildir message between tmp/ and new/, or the state's compaction."""
    assert STRACE is not None
    argv = [STRACE, "-f", "-qq", "-o", os.devnull, "-e", "trace=rename,renameat,renameat2"]
    argv += ["-e", f"inject=rename,renameat,renameat2:signal=SIGKILL:when={when}"]
    env = {**os.environ, "MAILCLI_FETCH_BATCH": "1"}
    killed = subprocess.run(
        [*argv, *MAILCLI, "--config", str(setup.config), "fetch", "-a", "one", "-a", "two"],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert killed.returncode == 75, killed.stderr  # a killed account: safe to run again
    assert "killed-by-signal-9" in killed.stdout.decode()
    rerun = setup.run("-a", "one", "-a", "two")
    assert rerun.returncode == 0, rerun.stderr
    assert setup.delivered() == EXPECTED


def test_sigterm_stops_every_account_the_orderly_way(setup: Setup, tmp_path: Path) -> None:
    """Account one's filter blocks on a fifo (after saying so); SIGTERM to the parent
    reaches every child, which stops as a single fetch would (143); a rerun delivers
    everything once."""
    fifo, ready = tmp_path / "fifo", tmp_path / "ready"
    os.mkfifo(fifo)
    blocking = tmp_path / "filter"
    blocking.write_text(f'#!/bin/sh\ncat > /dev/null\ntouch "{ready}"\ncat "{fifo}"\n')
    blocking.chmod(0o700)
    config = setup.config.read_text().replace(
        "[accounts.one.fetch]\n", f"[accounts.one.fetch]\nfilter = {json.dumps(str(blocking))}\n"
    )
    setup.config.write_text(config)
    process = subprocess.Popen(
        [*MAILCLI, "--config", str(setup.config), "fetch", "-a", "one", "-a", "two"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    for _ in range(3000):  # until the filter runs (at most 30 s)
        if ready.exists():
            break
        time.sleep(0.01)
    assert ready.exists()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert b"Traceback" not in stderr
    setup.config.write_text(config.replace(f"filter = {json.dumps(str(blocking))}\n", ""))
    rerun = setup.run("-a", "one", "-a", "two")
    assert rerun.returncode == 0, rerun.stderr
    assert setup.delivered() == EXPECTED
