"""`mailcli completion SHELL` prints the completion script, and the shipped completions/
are what it prints for the current CLI.

Regenerate them with (see the README):
    for sh in bash zsh fish; do mailcli completion $sh > completions/mailcli.$sh; done
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_process

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"
SHELLS = ["bash", "zsh", "fish"]


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_script_is_current(shell: str) -> None:
    done = run_process(["completion", shell])
    assert done.returncode == 0, done.stderr
    assert (COMPLETIONS / f"mailcli.{shell}").read_bytes() == done.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_command_prints_what_click_sources(shell: str) -> None:
    """The script names the program and the variable click answers on at completion time,
    whatever name this process was started under."""
    sourced = run_process([], env=dict(os.environ, _MAILCLI_COMPLETE=f"{shell}_source"))
    printed = run_process(["completion", shell])
    assert printed.stdout == sourced.stdout.replace(sys.executable.encode(), b"mailcli")
    assert b"_MAILCLI_COMPLETE=" in printed.stdout


def test_unknown_shell_is_a_usage_error() -> None:
    done = run_process(["completion", "tcsh"])
    assert done.returncode == 64
    assert done.stdout == b""
    assert b"'tcsh' is not one of 'bash', 'zsh', 'fish'" in done.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_script_completes_through_mailcli_on_path() -> None:
    """What a user gets after installing the script: the function registered for `mailcli`,
    answering from the `mailcli` found on PATH."""
    script = run_process(["completion", "bash"]).stdout.decode()
    probe = (
        f"{script}\n"
        "complete -p mailcli\n"
        "COMP_WORDS=(mailcli compl); COMP_CWORD=1; _mailcli_completion mailcli\n"
        'printf "reply:%s\\n" "${COMPREPLY[@]}"\n'
    )
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        env=dict(os.environ, PATH=path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "-F _mailcli_completion mailcli" in done.stdout
    assert done.stdout.splitlines()[-1] == "reply:completion"


def test_completion_answers_with_commands() -> None:
    env = dict(
        os.environ, _MAILCLI_COMPLETE="bash_complete", COMP_WORDS="mailcli pa", COMP_CWORD="1"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from mailcli.cli.main import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "plain,password"
