"""The package as users get it: the sdist and the wheel that scripts/install-wheel built, and
the wheel installed into a fresh venv (not the checkout), smoke-tested against the real
servers, so a file missing from the package fails CI.

Deselected by default (marker `installed`); .ci/run builds, then runs
    INSTALLED_MAILCLI_ROOT=DEST pytest -m installed tests/meta/test_installed.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from mailcli import __version__
from tests.servers.accounts import Account
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

pytestmark = pytest.mark.installed

ROOT = Path(__file__).resolve().parents[2]
# Read at import: the autouse isolated_environment fixture clears MAILCLI_* variables, and
# mailcli itself reads MAILCLI_*; this name is neither.
INSTALL_ROOT = os.environ.get("INSTALLED_MAILCLI_ROOT")


@pytest.fixture(scope="module")
def install_root() -> Path:
    """DEST of `scripts/install-wheel DEST`: DEST/dist (sdist, wheel) and DEST/venv."""
    if not INSTALL_ROOT:
        reason = "INSTALLED_MAILCLI_ROOT is not set (.ci/run sets it after scripts/install-wheel)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; required when CI=true", pytrace=False)
        pytest.skip(reason)
    root = Path(INSTALL_ROOT)
    assert (root / "venv" / "bin" / "mailcli").is_file(), f"no installed mailcli under {root}"
    return root


def package_sources() -> list[str]:
    """The modules of the package, as paths inside a wheel: mailcli/cli/main.py, ...; those
    git tracks (what scripts/install-wheel builds from), or all of them outside a checkout."""
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "mailcli/*.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if tracked.returncode == 0 and tracked.stdout:
        return sorted(name for name in tracked.stdout.split("\0") if name)
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "mailcli").rglob("*.py")
        if "__pycache__" not in path.parts
    )


def only(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def installed(root: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `mailcli` from outside the checkout, so nothing of it is importable."""
    environment = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    return subprocess.run(
        [str(root / "venv" / "bin" / "mailcli"), *args],
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_wheel_carries_the_license_and_every_module(install_root: Path) -> None:
    wheel = only(install_root / "dist", "mailcli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"mailcli-{__version__}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert [name for name in package_sources() if name not in names] == []
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert not [name for name in names if name.startswith("tests/")]


def test_sdist_carries_the_license_and_every_module(install_root: Path) -> None:
    sdist = only(install_root / "dist", "mailcli-*.tar.gz")
    prefix = f"mailcli-{__version__}/"
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(prefix) for name in archive.getnames()}
        license_text = archive.extractfile(prefix + "LICENSE")
        assert license_text is not None
        assert license_text.read() == (ROOT / "LICENSE").read_bytes()
    assert [name for name in package_sources() if name not in names] == []
    assert {"pyproject.toml", "README.md"} <= names


def test_installed_mailcli_is_the_wheel_not_the_checkout(
    install_root: Path, tmp_path: Path
) -> None:
    assert installed(install_root, "--version", cwd=tmp_path).stdout == f"mailcli {__version__}\n"
    python = install_root / "venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", "import mailcli; print(mailcli.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(done.stdout.strip()).is_relative_to(install_root / "venv")


def test_installed_completion_matches_the_shipped_script(
    install_root: Path, tmp_path: Path
) -> None:
    done = installed(install_root, "completion", "bash", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "completions" / "mailcli.bash").read_text()


@pytest.mark.pop3_account(security="starttls")
def test_installed_send_then_stat(
    install_root: Path,
    tmp_path: Path,
    postfix: Postfix,
    smtp_account: Account,
    pop3_account: Account,
    mailbox: Mailbox,
) -> None:
    """The whole path a user takes: STARTTLS and AUTH to Postfix, then POP3 from Dovecot."""
    message = ["--from", mailbox.address, "--to", mailbox.address, "--subject", "installed wheel"]
    sent = installed(
        install_root,
        "send",
        *smtp_account.args(),
        *message,
        "--body",
        "hello from the wheel",
        cwd=tmp_path,
        **smtp_account.env(),
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"{mailbox.address}\taccepted")
    (delivered,) = postfix.wait_for_delivery(mailbox.user)
    stored = delivered.read_bytes()
    assert b"hello from the wheel" in stored
    octets = len(stored.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))  # POP3 counts CRLF
    counted = installed(
        install_root, "stat", *pop3_account.args(), cwd=tmp_path, **pop3_account.env()
    )
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout == f"1\t{octets}\n"


def man_pages(directory: Path) -> list[str]:
    return sorted(page.name for page in directory.glob("*.1"))


def test_wheel_and_sdist_carry_the_man_pages(install_root: Path) -> None:
    pages = man_pages(ROOT / "man")
    assert {"mailcli.1", "mailcli-send.1"} <= set(pages)
    wheel = only(install_root / "dist", "mailcli-*.whl")
    data = f"mailcli-{__version__}.data/data/share/man/man1/"
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert [page for page in pages if data + page not in in_wheel] == []
    prefix = f"mailcli-{__version__}/man/"
    with tarfile.open(only(install_root / "dist", "mailcli-*.tar.gz")) as archive:
        in_sdist = set(archive.getnames())
    assert [page for page in pages if prefix + page not in in_sdist] == []


def test_installed_man_pages_render_without_warnings(install_root: Path, tmp_path: Path) -> None:
    """Each page where the wheel installed it (VENV/share/man/man1), rendered by man as a
    user reads it, without a groff warning; and found by name with the venv's bin on PATH
    (man looks in BIN/../share/man), as after `pipx install .` with ~/.local/bin on PATH
    and the pages linked into ~/.local/share/man."""
    man = shutil.which("man")
    if man is None:
        pytest.fail("no man (Debian: man-db; scripts/setup installs it)", pytrace=False)
    tree = install_root / "venv" / "share" / "man"
    pages = man_pages(tree / "man1")
    assert pages == man_pages(ROOT / "man")
    environment = {**os.environ, "MANWIDTH": "80"}
    for page in pages:
        shown = subprocess.run(
            [man, "--warnings=all", "-l", str(tree / "man1" / page)],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (shown.returncode, shown.stderr) == (0, ""), page
        assert shown.stdout.startswith(page.removesuffix(".1").upper() + "(1)"), page
    bin_first = os.pathsep.join([str(install_root / "venv" / "bin"), os.environ["PATH"]])
    lookup = {**environment, "PATH": bin_first}
    lookup.pop("MANPATH", None)  # set, it would be the only place man looks
    found = subprocess.run(
        [man, "mailcli-send"],
        env=lookup,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert "mailcli-send - Compose and submit one message over SMTP." in found.stdout
