"""Helpers shared by the tests: run the CLI in-process or as a process, test keyrings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keyring.backend
import keyring.errors
from click.testing import CliRunner

from mailcli.cli.main import _run

ROOT = Path(__file__).resolve().parent.parent
MAILCLI = [sys.executable, "-m", "mailcli"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    args: Sequence[str], *, env: Mapping[str, str | None] | None = None, input: str | None = None
) -> Result:
    """Run mailcli in this process through the real entry point (`main`'s translation of
    errors into exit codes included), capturing stdout and stderr separately."""
    runner = CliRunner()
    with runner.isolation(input=input, env=env) as (stdout, stderr, _):
        code = _run(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
    return Result(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def run_process(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = 60,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m mailcli ARGS` as a real process (pipes, not a terminal)."""
    return subprocess.run(
        [*MAILCLI, *args],
        input=input,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=dict(env if env is not None else os.environ),
        timeout=timeout,
        check=False,
    )


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend in a dict, for tests that do not need the real Secret Service."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


class LockedKeyring(MemoryKeyring):
    """Behaves as a locked collection does: every access refused."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")
