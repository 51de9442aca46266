"""Output forms: rich table on a TTY, tab-separated when piped, JSON; stderr for people."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest

from mailcli.render import OutputMode, Renderer
from tests.helpers import MAILCLI, run_cli

ROWS = [[1, 501, "UID-1"], [2, 1585, "tab\there"]]
DOCUMENT = {"messages": [{"number": 1, "size": 501}, {"number": 2, "size": 1585}]}


def render(mode: OutputMode) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    renderer = Renderer(mode, out, err)
    renderer.table(["number", "size", "uid"], ROWS, document=DOCUMENT)
    renderer.info("fetched 2 messages")
    renderer.warning("certificate expires soon")
    renderer.error("it broke", hint="do this")
    return out.getvalue(), err.getvalue()


def test_piped_output_is_tab_separated_without_header() -> None:
    out, err = render(OutputMode())
    assert out == "1\t501\tUID-1\n2\t1585\ttab here\n"
    assert err == (
        "fetched 2 messages\nmailcli: warning: certificate expires soon\n"
        "mailcli: error: it broke\nmailcli: hint: do this\n"
    )


def test_json_output_is_one_document() -> None:
    out, _ = render(OutputMode(json=True))
    assert json.loads(out) == DOCUMENT


def test_tty_output_is_a_table_with_headers() -> None:
    out, _ = render(OutputMode(stdout_tty=True, color=False))
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].split() == ["number", "size", "uid"]
    assert "\x1b[" not in out
    assert any(line.split()[:3] == ["1", "501", "UID-1"] for line in lines)


def test_quiet_keeps_errors_only() -> None:
    _, err = render(OutputMode(quiet=True))
    assert err == "mailcli: error: it broke\nmailcli: hint: do this\n"


def test_colour_on_a_terminal_unless_no_color() -> None:
    _, coloured = render(OutputMode(stderr_tty=True, color=True))
    _, plain = render(OutputMode(stderr_tty=True, color=False))
    assert "\x1b[31m" in coloured
    assert "\x1b[" not in plain


def test_markup_in_data_is_not_interpreted() -> None:
    out = io.StringIO()
    Renderer(OutputMode(stdout_tty=True, color=False), out, io.StringIO()).table(
        ["subject"], [["[bold]hi[/bold]"]], document=None
    )
    assert "[bold]hi[/bold]" in out.getvalue()


ACCOUNTS = '[accounts.w]\nfrom = "Ann <ann@example.org>"\n[accounts.w.smtp]\nhost = "s.example"\n'


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run mailcli with stdout on a pseudo-terminal, as a person would see it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([*MAILCLI, *args], stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks)


@pytest.mark.parametrize("no_color", [False, True])
def test_real_process_on_a_terminal_draws_a_table(config_file: Path, no_color: bool) -> None:
    config_file.write_text(ACCOUNTS)
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100")
    if no_color:
        env["NO_COLOR"] = "1"
    screen = run_on_a_terminal(["account", "list"], env).decode()
    assert "account" in screen and "smtp" in screen  # the header row
    assert "s.example" in screen
    assert ("\x1b[" in screen) != no_color


def test_real_process_piped_prints_plain_lines(config_file: Path) -> None:
    config_file.write_text(ACCOUNTS)
    done = subprocess.run([*MAILCLI, "account", "list"], capture_output=True, check=True)
    assert done.stdout == b"w\tyes\tAnn <ann@example.org>\ts.example\t-\n"


def test_global_flags_work_before_and_after_the_command(config_file: Path) -> None:
    config_file.write_text(ACCOUNTS)
    before = run_cli(["--json", "account", "list"]).stdout
    after = run_cli(["account", "list", "--json"]).stdout
    assert json.loads(before) == json.loads(after)
    assert json.loads(after)["accounts"][0]["name"] == "w"
    assert run_cli(["account", "add", "x", "-q"]).stderr == ""
