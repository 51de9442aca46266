"""The msmtp/mpop grammar, with the real tools as the judge: each argument form reads as
`msmtp --pretend` and `mpop --pretend` show it, and defaults and inheritance copy what
the tools copy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mailcli.importer.rcfile import parse_rcfile, read_rcfile
from tests.servers import require
from tests.servers.oldtools import write_rc

ARGUMENTS = [
    "plain",
    "two words",
    "trailing blanks \t ",
    '"quoted"',
    '" inner blanks "',
    '"a\\"b"',  # no escapes: backslash and quote stay
    '"a\\\\b"',
    '"a\\nb"',
    '"x" y',  # a quote at one end only is text
    '"unterminated',
    'mid"dle"',
    '""',
    "hash # is text",
    "'single'",
]


def pretended(tool: str, rc: Path) -> dict[str, str]:
    """The settings the tool shows for account `a` (`NAME = VALUE` lines)."""
    argv = [tool, "-C", str(rc), "--pretend"] + (["-a", "a"] if tool == "msmtp" else ["a"])
    done = subprocess.run(
        argv, capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    shown = dict(line.split(" = ", 1) for line in lines if " = " in line)
    return {key: "" if value == "(not set)" else value for key, value in shown.items()}


@pytest.mark.parametrize("tool", ["msmtp", "mpop"])
def test_arguments_read_as_the_tool_reads_them(tool: str, tmp_path: Path) -> None:
    require(tool)
    key = "from" if tool == "msmtp" else "user"  # a free-text setting each shows as is
    for number, argument in enumerate(ARGUMENTS):
        text = f"account a\nhost h\ndelivery maildir {tmp_path}\n{key} {argument}\n"
        if tool == "msmtp":
            text = text.replace(f"delivery maildir {tmp_path}\n", "")
        rc = write_rc(tmp_path / f"rc{number}", text)
        ours = read_rcfile(rc).accounts["a"].settings[key].argument
        assert ours == pretended(tool, rc)[key], argument


def test_defaults_and_inheritance_copy_what_msmtp_copies(tmp_path: Path) -> None:
    require("msmtp")
    text = (
        "# comment\n  # indented comment\n\ndefaults\nport 2525\nfrom d@x\n"
        "account a\nhost ha\nfrom a@x\n"
        "defaults\nport 26\n"  # later defaults reach only later accounts
        "account b : a\nhost hb\n"
        "account c : b, a\nport 27\n"
    )
    rc = write_rc(tmp_path / "rc", text)
    parsed = parse_rcfile(text, rc)
    for name in ("a", "b", "c"):
        argv = ["msmtp", "-C", str(rc), "--pretend", "-a", name]
        done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
        shown = dict(
            line.split(" = ", 1) for line in done.stdout.decode().splitlines() if " = " in line
        )
        ours = {key: s.argument for key, s in parsed.accounts[name].settings.items()}
        assert {key: shown[key] for key in ours} == ours, name
