"""The same mailbox reached another way is the same mailbox: port,
TLS mode and host spelling do not change what was fetched; old state keeps working."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailcli.fetch.destination import message_key
from mailcli.fetch.mailbox import mailbox_identity, v1_state_name
from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account, Security
from tests.servers.accounts import numbered_message as message
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox

KEPT = 7


class Reach:
    """`mailcli fetch` for one Dovecot user, by any host, port and TLS mode."""

    def __init__(self, mailcli: Mailcli, dovecot: Dovecot, box: Mailbox, home: Path) -> None:
        self.mailcli, self.dovecot, self.box, self.home = mailcli, dovecot, box, home
        box.drop(*(message(number) for number in range(KEPT)))

    def account(self, way: str) -> Account:
        host, security = way.split("/")
        modes: dict[str, Security] = {"starttls": "starttls", "tls": "tls"}
        account = Account.pop3(
            self.dovecot, self.box.user, self.box.password, security=modes[security]
        )
        return replace(account, host=host)

    def fetch(self, way: str, *extra: str) -> Result:
        return self.mailcli.as_account(self.account(way))("fetch", *extra)

    def fetched(self, way: str, *extra: str) -> int:
        return int(self.mailcli.as_account(self.account(way)).json("fetch", *extra)["fetched"])

    def files(self, maildir: str = "Maildir") -> list[Path]:
        return sorted((self.home / maildir / "new").iterdir())

    @property
    def state_dir(self) -> Path:
        return self.home / ".local/state/mailcli/fetch"

    def uids(self) -> list[str]:
        return [m["uid"] for m in self.mailcli.json("uidl")["messages"]]


@pytest.fixture
def reach(
    mailcli: Mailcli, dovecot: Dovecot, mailbox: Mailbox, isolated_environment: Path
) -> Reach:
    return Reach(mailcli, dovecot, mailbox, isolated_environment)


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
    assert state.read_text().startswith("# mailcli fetch state v4 ")
    assert reach.fetched("127.0.0.1/starttls") == 0
    assert len(list((old_maildir / "new").iterdir())) == KEPT


def test_maildir_files_of_the_old_version_are_recognised_without_state(reach: Reach) -> None:
    """Delivered by the old version (keys from host text and port), never recorded: a
    crash in that window before the upgrade must not fetch them again after it."""
    assert reach.fetched("127.0.0.1/starttls") == KEPT
    identity = mailbox_identity(None, reach.box.user, "127.0.0.1")
    v1_name = v1_state_name(None, reach.box.user, "127.0.0.1", reach.dovecot.pop3_port)
    for listed in reach.mailcli.json("list")["messages"]:
        uid, size = listed["uid"], listed["size"]
        new_key, old_key = message_key(identity, uid, size), message_key(v1_name, uid)
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
