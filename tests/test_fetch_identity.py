"""The same mailbox reached another way is the same mailbox (issue 12, defect 10): port,
TLS mode and host spelling do not change what was fetched; old state keeps working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailcli.fetch.destination import message_key
from mailcli.fetch.state import mailbox_identity, v1_state_name
from tests.helpers import Result, run_cli
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox

KEPT = 7


class Reach:
    """`mailcli fetch` for one Dovecot user, by any host, port and TLS mode."""

    def __init__(self, dovecot: Dovecot, certs: Certs, box: Mailbox, home: Path) -> None:
        self.dovecot, self.certs, self.box, self.home = dovecot, certs, box, home
        for number in range(KEPT):
            body = f"Subject: kept {number}\nMessage-ID: <k{number}@x>\n\nbody {number}\n"
            dovecot.drop_message(box.user, body.encode())

    def ways(self) -> dict[str, list[str]]:
        ports = {"starttls": self.dovecot.pop3_port, "tls": self.dovecot.pop3s_port}
        return {
            f"{host}/{security}": [
                *("--host", host, "--port", str(ports[security])),
                *("--security", security),
            ]
            for host in ("127.0.0.1", "localhost")
            for security in ("starttls", "tls")
        }

    def fetch(self, way: str, *extra: str) -> Result:
        args = [*self.ways()[way], "--cafile", str(self.certs.ca_pem), "--user", self.box.user]
        return run_cli(["fetch", *args, *extra], env={"MAILCLI_PASSWORD": self.box.password})

    def fetched(self, way: str, *extra: str) -> int:
        result = self.fetch(way, "--json", *extra)
        assert result.code == 0, result.stderr
        return int(json.loads(result.stdout)["fetched"])

    def files(self, maildir: str = "Maildir") -> list[Path]:
        return sorted((self.home / maildir / "new").iterdir())

    @property
    def state_dir(self) -> Path:
        return self.home / ".local/state/mailcli/fetch"

    def uids(self) -> list[str]:
        args = ["--host", "127.0.0.1", "--port", str(self.dovecot.pop3_port)]
        args += ["--cafile", str(self.certs.ca_pem), "--user", self.box.user]
        result = run_cli(["uidl", "--json", *args], env={"MAILCLI_PASSWORD": self.box.password})
        return [m["uid"] for m in json.loads(result.stdout)["messages"]]


@pytest.fixture
def reach(dovecot: Dovecot, certs: Certs, mailbox: Mailbox, isolated_environment: Path) -> Reach:
    return Reach(dovecot, certs, mailbox, isolated_environment)


def test_starttls_then_tls_then_localhost_is_still_seven_files(reach: Reach) -> None:
    """Was: 7 messages kept on the server became 21 files."""
    assert reach.fetched("127.0.0.1/starttls") == KEPT
    for way in ("127.0.0.1/tls", "localhost/starttls", "localhost/tls"):
        assert reach.fetched(way) == 0, way
    assert len(reach.files()) == KEPT
    assert len(list(reach.state_dir.glob("*.uids"))) == 1


def test_a_v1_state_file_of_the_old_naming_keeps_working(reach: Reach) -> None:
    assert reach.fetched("127.0.0.1/starttls") == KEPT
    for path in reach.state_dir.glob("*.uids"):
        path.unlink()
    name = v1_state_name(None, reach.box.user, "127.0.0.1", reach.dovecot.pop3_port)
    old = reach.state_dir / f"{name}.uids"  # as the version before this one wrote it
    old.write_text(f"# mailcli fetch state v1 {name}\n{' '.join(reach.uids())}\n")
    old_maildir = reach.home / "Maildir"
    assert reach.fetched("localhost/tls", "--to", f"maildir:{reach.home / 'Other'}") == 0
    assert not old.exists()
    (state,) = reach.state_dir.glob("*.uids")
    assert state.read_text().startswith("# mailcli fetch state v2 ")
    assert reach.fetched("127.0.0.1/starttls") == 0
    assert len(list((old_maildir / "new").iterdir())) == KEPT


def test_maildir_files_of_the_old_version_are_recognised_without_state(reach: Reach) -> None:
    """Delivered by the old version (keys from host text and port), never recorded: a
    crash in that window before the upgrade must not fetch them again after it."""
    assert reach.fetched("127.0.0.1/starttls") == KEPT
    identity = mailbox_identity(None, reach.box.user, "127.0.0.1")
    v1_name = v1_state_name(None, reach.box.user, "127.0.0.1", reach.dovecot.pop3_port)
    for uid in reach.uids():
        new_key, old_key = message_key(identity, uid), message_key(v1_name, uid)
        (path,) = [p for p in reach.files() if new_key in p.name]
        path.rename(path.with_name(path.name.replace(new_key, old_key)))
    for path in reach.state_dir.glob("*.uids"):
        path.unlink()
    assert reach.fetched("127.0.0.1/starttls") == 0
    assert len(reach.files()) == KEPT


def test_a_new_destination_with_nothing_new_says_why(reach: Reach) -> None:
    assert reach.fetched("127.0.0.1/starttls") == KEPT
    other = reach.home / "Other"
    result = reach.fetch("localhost/tls", "--to", f"maildir:{other}")
    assert result.code == 0, result.stderr
    assert result.stderr == (
        f"nothing new for this mailbox: {KEPT} messages were fetched earlier into "
        f"maildir:{reach.home / 'Maildir'}; use --all to fetch them again into "
        f"maildir:{other}\n"
    )
    quiet = reach.fetch("localhost/tls", "--to", f"maildir:{other}", "-q")
    assert (quiet.code, quiet.stderr) == (0, "")
    same = reach.fetch("127.0.0.1/tls")  # the last destination again: silent when piped
    assert (same.code, same.stderr) == (0, "")
    assert reach.fetched("localhost/tls", "--to", f"maildir:{other}", "--all") == KEPT
