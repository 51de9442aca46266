"""The shipped completion scripts are what the current CLI generates.

Regenerate them with (see the README):
    for sh in bash zsh fish; do
        _MAILCLI_COMPLETE=${sh}_source mailcli > completions/mailcli.$sh
    done
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_current(shell: str) -> None:
    env = dict(os.environ, _MAILCLI_COMPLETE=f"{shell}_source")
    generated = subprocess.run(
        [sys.executable, "-c", "from mailcli.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    generated = generated.replace(sys.executable, "mailcli")
    assert (COMPLETIONS / f"mailcli.{shell}").read_text() == generated


def test_completion_answers_with_commands() -> None:
    env = dict(
        os.environ, _MAILCLI_COMPLETE="bash_complete", COMP_WORDS="mailcli pa", COMP_CWORD="1"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from mailcli.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "plain,password"
