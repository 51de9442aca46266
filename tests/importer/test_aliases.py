"""msmtp's `aliases` file through `mailcli account import`: its entries land in the
config's `[aliases]`, expanded as msmtp expands them, in the same write as the accounts;
an entry the config already has with another value is reported and kept unless
--replace; the file's bad lines are reported by file and line. And the real msmtp and
mailcli's sendmail, after the import, send a local name to the same recipients."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Result, run_cli
from tests.helpers import import_accounts as imported
from tests.servers import require
from tests.servers.accounts import Account
from tests.servers.oldtools import run_tool, server_lines, write_rc
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]

# The forms msmtp reads (a comment anywhere, blanks around names and commas, a target
# that is itself an alias, `default`), and each line it refuses.
ALIASES = """\
# who gets what
root: ann@example.org, ops   # ops expands too
ops:bob@example.org ,carl@example.org
postmaster: nosuch
default: catch@example.org
bad: one: two
ann@example.org: x@example.org
ops: again@example.org
ring: loop
loop: ring
"""


def rc_naming(directory: Path, aliases: Path, smtp: str = "host smtp.example.org\n") -> Path:
    return write_rc(
        directory / "msmtprc",
        f"defaults\naliases {aliases}\naccount a\n{smtp}from a@example.org\n",
    )


def reported(result: Result) -> list[str]:
    prefix = "mailcli: warning: not imported: "
    return [line.removeprefix(prefix) for line in result.stderr.splitlines() if prefix in line]


def test_the_entries_land_in_aliases_expanded(tmp_path: Path, config_file: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text(ALIASES)
    result = imported(str(rc_naming(tmp_path, aliases)))
    assert result.code == 0, result.stderr
    written = tomllib.loads(config_file.read_text())
    assert written["accounts"]["a"]["from"] == "a@example.org"  # one write, both tables
    assert written["aliases"] == {
        "root": "ann@example.org, bob@example.org, carl@example.org",
        "ops": "bob@example.org, carl@example.org",
        "postmaster": "catch@example.org",  # an unknown name goes to default, as in msmtp
        "default": "catch@example.org",
    }
    assert "imported aliases: root, ops, postmaster, default" in result.stderr
    problems = [line.split(": ", 3) for line in reported(result)]
    assert [(where.removeprefix(f"{aliases}:"), name) for where, _, name, _ in problems] == [
        ("6", "bad"),
        ("7", "ann@example.org"),
        ("8", "ops"),
        ("9", "ring"),
        ("10", "loop"),
    ]
    assert "one colon" in problems[0][3] and "given twice" in problems[2][3]
    assert "levels deep" in problems[3][3]


def test_a_local_name_msmtp_would_send_as_it_is(tmp_path: Path, config_file: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text("root: admin\nops: ops@example.org\n")
    result = imported(str(rc_naming(tmp_path, aliases)))
    assert result.code == 0, result.stderr
    assert tomllib.loads(config_file.read_text())["aliases"] == {"ops": "ops@example.org"}
    assert reported(result) == [
        f"{aliases}:1: aliases: root: expands to the local name 'admin', which msmtp sends "
        "as it is and mailcli would give the account's domain"
    ]


def test_a_missing_file_is_reported_at_the_rc_line(tmp_path: Path, config_file: Path) -> None:
    rc = rc_naming(tmp_path, tmp_path / "nosuch")
    result = imported(str(rc))
    assert result.code == 0, result.stderr
    assert reported(result) == [f"{rc}:2: aliases: aliases: {tmp_path}/nosuch: no such file"]
    assert "aliases" not in tomllib.loads(config_file.read_text())


def test_an_existing_entry_is_kept_unless_replace(tmp_path: Path, config_file: Path) -> None:
    original = '[aliases]\nroot = "me@example.org" # mine\nops = "ops@example.org"\n'
    config_file.write_text(original)
    aliases = tmp_path / "aliases"
    aliases.write_text("root: ann@example.org\nops: ops@example.org\nwww: w@example.org\n")
    rc = rc_naming(tmp_path, aliases)
    kept = imported(str(rc))
    assert kept.code == 0, kept.stderr
    assert reported(kept) == [
        f"{aliases}:1: aliases: root: [aliases] already has 'me@example.org'; kept "
        "(--replace overwrites it)"
    ]
    assert tomllib.loads(config_file.read_text())["aliases"] == {
        "root": "me@example.org",
        "ops": "ops@example.org",
        "www": "w@example.org",
    }
    replaced = imported("--replace", str(rc))
    assert replaced.code == 0 and reported(replaced) == []
    text = config_file.read_text()
    assert 'root = "ann@example.org"' in text and "# mine" in text  # comment kept


def test_a_dry_run_writes_no_alias(tmp_path: Path, config_file: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text("root: ann@example.org\n")
    result = imported("--dry-run", str(rc_naming(tmp_path, aliases)))
    assert result.code == 0, result.stderr
    assert tomllib.loads(result.stdout)["aliases"] == {"root": "ann@example.org"}
    assert not config_file.exists()


def test_msmtp_and_mailcli_send_an_alias_to_the_same_recipients(
    aiosmtpd_factory: Factory, isolated_environment: Path, config_file: Path
) -> None:
    require("msmtp")
    server = aiosmtpd_factory()
    aliases = isolated_environment / "aliases"
    aliases.write_text(ALIASES.split("bad:")[0])  # the lines msmtp accepts
    smtp = server_lines(Account.smtpd(server, security="none"))
    rc = rc_naming(isolated_environment, aliases, smtp)
    letter = b"Subject: to root\n\nbody\n"
    for name in ("root", "postmaster"):
        run_tool(["msmtp", "-C", str(rc), "-a", "a", name], os.environ, letter)
    result = imported(str(rc))
    assert result.code == 0, result.stderr
    for name in ("root", "postmaster"):
        sent = run_cli(["sendmail", name], input=letter.decode())
        assert sent.code == 0, sent.stderr
    by_msmtp, by_mailcli = server.received[:2], server.received[2:]
    # msmtp gives an alias's addresses in reverse order; the order of RCPT does not matter.
    assert [sorted(m.rcpt_tos) for m in by_mailcli] == [sorted(m.rcpt_tos) for m in by_msmtp]
    assert sorted(by_msmtp[0].rcpt_tos) == [
        "ann@example.org",
        "bob@example.org",
        "carl@example.org",
    ]
    assert by_msmtp[1].rcpt_tos == ("catch@example.org",)
