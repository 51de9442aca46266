"""Test isolation: no test sees the user's config, keyring, state or environment."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from tests.helpers import Mailcli, MemoryKeyring
from tests.servers.fixtures import *  # noqa: F403  (the real-server fixtures)

# The chain a test asks for: a server (dovecot, postfix, aiosmtpd_factory) -> an account
# (pop3_account, smtp_account) -> the `mailcli` runner; markers configure each link.
MARKERS = (
    "pop3_account(security): the POP3 port and mode of the pop3_account fixture",
    "smtp_account(security): the submission port and mode of the smtp_account fixture",
    "mailcli(account, process): the mailcli fixture's account fixture (default "
    "pop3_account) and whether it runs a real process (default: in this process)",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    # A run started in the background without job control (`cmd &` in a script, nohup)
    # inherits SIGINT ignored, and so would every mailcli the tests start: the tests that
    # stop mailcli with SIGINT need it at its default. A handler, unlike SIG_IGN, is not
    # inherited through exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private HOME/XDG dirs; no MAILCLI_* or D-Bus from the caller; keyring `fail`
    backend for child processes unless a test supplies a real one."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("MAILCLI_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return home


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """An in-process keyring backend (tests of the chain that need no real service)."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def config_file(isolated_environment: Path) -> Path:
    """Where mailcli looks for its config by default in these tests."""
    path = isolated_environment / ".config" / "mailcli" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


@pytest.fixture
def mailcli(request: pytest.FixtureRequest) -> Mailcli:
    """Runs mailcli as an account (see ``tests.helpers.Mailcli``); configured by
    ``@pytest.mark.mailcli(account="smtp_account", process=True)``."""
    marker = request.node.get_closest_marker("mailcli")
    options = {} if marker is None else dict(marker.kwargs)
    account = request.getfixturevalue(options.pop("account", "pop3_account"))
    return Mailcli(account, **options)
