"""The repository holds the project and nothing else: no virtualenvs or build output, no
large files, and no reference to anything outside itself."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_SIZE = 1024 * 1024
# Directories that are generated or machine-specific (see .gitignore), at any depth.
GENERATED_DIRS = {".venv", "venv", "build", "dist", "__pycache__"}
GENERATED_SUFFIXES = (".egg-info",)
# Spelled in two parts so that this file does not contain what it looks for.
OUTSIDE_REFERENCE = b"../" + b"shared"


def tracked_files() -> list[str]:
    """The paths `git ls-files` lists; skip outside a git checkout (an sdist), except on CI."""
    done: subprocess.CompletedProcess[bytes] | None
    toplevel: subprocess.CompletedProcess[str] | None
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z"],
            capture_output=True,
            check=False,
        )
        toplevel = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        done = toplevel = None
    if done is None or toplevel is None or done.returncode != 0 or toplevel.returncode != 0:
        reason = "not a git checkout (or no git): nothing is tracked"
    elif Path(toplevel.stdout.strip()).resolve() != ROOT:
        reason = f"{ROOT} is not the top of its git checkout"
    else:
        return [name for name in done.stdout.decode().split("\0") if name]
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
    pytest.skip(reason)


def is_generated(name: str) -> bool:
    directories = PurePosixPath(name).parts[:-1]
    return any(part in GENERATED_DIRS or part.endswith(GENERATED_SUFFIXES) for part in directories)


def present(names: list[str]) -> list[Path]:
    """Tracked files that exist in the work tree (a deletion not yet committed is gone)."""
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def test_is_generated_matches_every_kind_at_any_depth() -> None:
    assert is_generated(".venv/bin/python")
    assert is_generated("venv/pyvenv.cfg")
    assert is_generated("build/lib/mailcli/__init__.py")
    assert is_generated("dist/mailcli-1.0.tar.gz")
    assert is_generated("mailcli.egg-info/PKG-INFO")
    assert is_generated("mailcli/cli/__pycache__/main.cpython-311.pyc")
    assert not is_generated("mailcli/cli/main.py")
    assert not is_generated("scripts/build")  # a file named like a directory is fine


def test_no_generated_or_machine_specific_files_are_tracked() -> None:
    generated = [name for name in tracked_files() if is_generated(name)]
    assert generated == [], f"tracked but generated: {generated[:20]} ({len(generated)} in all)"


def test_no_tracked_file_is_over_one_mebibyte() -> None:
    large = [
        f"{path.relative_to(ROOT)} ({path.stat().st_size} bytes)"
        for path in present(tracked_files())
        if path.stat().st_size > MAX_FILE_SIZE
    ]
    assert large == []


def test_nothing_refers_outside_the_repository() -> None:
    referring = [
        str(path.relative_to(ROOT))
        for path in present(tracked_files())
        if OUTSIDE_REFERENCE in path.read_bytes()
    ]
    assert referring == [], f"these files mention {OUTSIDE_REFERENCE.decode()}"


# A ticket number in code or tests ("issue" or "defect" and a number): they say what
# they do, not who asked for it.
TICKET_REFERENCE = re.compile(rb"\b(?:issue|defects?) \d+|[(]" + b"issue\\b", re.IGNORECASE)


def test_code_and_tests_name_no_issue_numbers() -> None:
    naming = [
        str(path.relative_to(ROOT))
        for path in present(tracked_files())
        if path.suffix in (".py", ".sh", "")
        and path.parts[-2:-1] != ("docs",)
        and TICKET_REFERENCE.search(path.read_bytes())
    ]
    assert naming == []
