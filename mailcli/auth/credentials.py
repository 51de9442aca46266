"""Where a password comes from, in a documented order; the only importer of keyring.

Lookup order, first hit wins:
1. `MAILCLI_PASSWORD` in the environment;
2. the password command (`--password-command` or `password_command` in the config):
   its standard output, first line; run through the shell, stderr left on the terminal
   so tools such as `pass` can ask for a GPG passphrase;
3. the OS keyring, service `mailcli`, username `USER@HOST`;
4. `~/.netrc` (or `$NETRC`): the entry for machine HOST with login USER, else the
   `default` entry with that login (`mailcli.auth.netrc`); a netrc that group or others
   may read, or that is broken, ends the chain with `CredentialsError` (78) saying why;
5. an interactive prompt, only when the caller supplies a prompter (stdin is a TTY);
6. otherwise `CredentialsError` (exit 78) naming every way to provide one.

keyring is imported only when step 3 is reached: importing it and discovering the
backend costs more than the rest of mailcli's startup together.

Every keyring call is bounded (`KEYRING_TIMEOUT`): a Secret Service that is stopped or
wedged never answers its D-Bus calls, and nothing in keyring gives up on them, so
`stat --timeout 5` and `sendmail` hung for ever (sendmail holding a message it never
queued). The call runs in a daemon thread; past the bound the keyring counts as
unavailable for the rest of the process (the chain goes on, else 78 names it) and the
thread is left to die with the process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from mailcli.errors import CredentialsError

if TYPE_CHECKING:
    from mailcli.auth.netrc import NetrcAnswer

SERVICE = "mailcli"
ENV_VAR = "MAILCLI_PASSWORD"
PASSWORD_COMMAND_TIMEOUT = 60.0
# A desktop keyring answers in milliseconds; one that has not answered in this long is
# stopped or hung (an unlock prompt the user has not answered counts too: we go on).
KEYRING_TIMEOUT = 10.0
_T = TypeVar("_T")
_hung: list[str] = []  # why the keyring stopped answering, once it has (per process)


class Secret(NamedTuple):
    """A password or token, and which source gave it. The value never shows in repr.
    A NamedTuple: a dataclass costs ~0.7 ms to build at every run's import (start-up)."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r})"


class SourceStatus(NamedTuple):
    """One step of the chain, as `mailcli password where` reports it. A NamedTuple: a
    dataclass would be built on every run's import, for that one command (start-up)."""

    name: str
    available: bool
    detail: str


class Prompter(Protocol):
    """Supplied by the CLI when it may ask a person; core code never prompts itself."""

    def ask_password(self, key: str) -> str: ...

    def offer_to_store(self, key: str) -> bool: ...


class KeyringUnavailable(Exception):
    """The keyring cannot be used; the message says why (no backend, locked, no D-Bus)."""


def get_password(
    key: str,
    *,
    password_command: str | None,
    environ: Mapping[str, str] = os.environ,
    prompter: Prompter | None = None,
) -> Secret:
    """Walk the chain for `key` (USER@HOST) and return the first secret found."""
    if environ.get(ENV_VAR):
        return Secret(environ[ENV_VAR], "environment")
    if password_command:
        return Secret(run_password_command(password_command), "password_command")
    keyring_reason = None
    try:
        stored = keyring_get(key)
    except KeyringUnavailable as exc:
        keyring_reason = str(exc)
    else:
        if stored is not None:
            return Secret(stored, "keyring")
    from_netrc = netrc_lookup(key, environ).password
    if from_netrc is not None:
        return Secret(from_netrc, "netrc")
    if prompter is not None:
        return _prompt(key, prompter, keyring_reason)
    raise missing_password_error(key, keyring_reason)


def missing_password_error(key: str, keyring_reason: str | None) -> CredentialsError:
    """One line naming every way to supply the password, and why the keyring could not."""
    why = f" (keyring unavailable: {keyring_reason})" if keyring_reason else ""
    return CredentialsError(
        f"no password for {key} and no terminal to ask on: set {ENV_VAR}, set "
        f"password_command (or --password-command), store one with "
        f"`mailcli password set {key}`, or add it to ~/.netrc{why}"
    )


def _prompt(key: str, prompter: Prompter, keyring_reason: str | None) -> Secret:
    value = prompter.ask_password(key)
    if keyring_reason is None and value and prompter.offer_to_store(key):
        # Storing is a convenience; the password itself is already in hand.
        with suppress(KeyringUnavailable):
            keyring_set(key, value)
    return Secret(value, "prompt")


def run_password_command(command: str) -> str:
    """First line of the command's stdout. Its stderr stays on the terminal."""
    import subprocess

    from mailcli.auth.childenv import child_environment

    try:
        done = subprocess.run(
            command,
            shell=True,
            env=child_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=PASSWORD_COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialsError(
            f"password command did not finish within {PASSWORD_COMMAND_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        raise CredentialsError(f"password command exited with status {done.returncode}")
    first_line = done.stdout.decode("utf-8", "replace").split("\n", 1)[0].rstrip("\r")
    if not first_line:
        raise CredentialsError("password command printed nothing on its first line")
    return first_line


def _keyring() -> Any:
    """Import keyring and make sure a usable backend exists."""
    import keyring

    backend = keyring.get_keyring()
    if type(backend).__module__.startswith("keyring.backends.fail"):
        raise KeyringUnavailable(
            "no keyring backend found (is a Secret Service such as gnome-keyring running "
            "on the D-Bus session bus?)"
        )
    return keyring


def _describe_keyring_error(exc: Exception) -> str:
    """Turn backend exceptions (NoKeyringError, KeyringLocked, InitError, D-Bus) into words."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    if name == "KeyringLocked":
        return f"the keyring is locked ({text}); unlock it or use another source"
    if name == "NoKeyringError":
        return f"no keyring backend ({text})"
    if "Prompt dismissed" in text:  # gnome-keyring wants a desktop prompt to unlock
        return f"the keyring is locked and no desktop prompt can unlock it ({name}: {text})"
    if "DBUS" in text.upper() or "D-Bus" in text:
        return f"D-Bus is not reachable ({text})"
    return f"{name}: {text}"


@contextmanager
def _keyring_errors() -> Iterator[None]:
    """Every backend raises its own exceptions; all of them mean "keyring unusable"."""
    try:
        yield
    except KeyringUnavailable:
        raise
    except Exception as exc:
        raise KeyringUnavailable(_describe_keyring_error(exc)) from exc


def _bounded(call: Callable[[], _T]) -> _T:
    """`call()` (a keyring operation) or KeyringUnavailable once KEYRING_TIMEOUT passes."""
    import threading

    if _hung:
        raise KeyringUnavailable(_hung[0])
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the caller's thread as it is
            outcome.append((False, exc))

    worker = threading.Thread(target=target, name="keyring", daemon=True)
    worker.start()
    worker.join(KEYRING_TIMEOUT)
    if not outcome:
        _hung.append(
            f"the keyring did not answer within {KEYRING_TIMEOUT:g} s (is its Secret "
            "Service stopped or hung?)"
        )
        raise KeyringUnavailable(_hung[0])
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value  # type: ignore[no-any-return]


def keyring_call(call: Callable[[], _T]) -> _T:
    """A keyring operation, bounded in time, every backend error KeyringUnavailable:
    how this module and `auth.libsecret` reach the keyring."""
    with _keyring_errors():
        return _bounded(call)


def keyring_get(key: str) -> str | None:
    value = keyring_call(lambda: _keyring().get_password(SERVICE, key))
    return value if value is None else str(value)


def keyring_set(key: str, value: str) -> str:
    """Store a secret; returns the backend's name for the report."""

    def store() -> str:
        module = _keyring()
        module.set_password(SERVICE, key, value)
        return backend_name(module.get_keyring())

    return keyring_call(store)


def keyring_delete(key: str) -> bool:
    """Remove a secret; False when there was none."""

    def delete() -> bool:
        module = _keyring()
        if module.get_password(SERVICE, key) is None:
            return False
        module.delete_password(SERVICE, key)
        return True

    return keyring_call(delete)


def backend_name(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__.removeprefix('keyring.backends.')}.{cls.__name__}"


def describe_sources(
    key: str,
    *,
    password_command: str | None,
    environ: Mapping[str, str] = os.environ,
    interactive: bool,
) -> list[SourceStatus]:
    """Each step of the chain: would it answer, and why not. Never returns a secret."""
    statuses = [
        SourceStatus(ENV_VAR, bool(environ.get(ENV_VAR)), _env_detail(environ)),
        SourceStatus(
            "password_command",
            bool(password_command),
            "configured (not run by `where`)" if password_command else "not configured",
        ),
        _keyring_status(key),
        _netrc_status(key, environ),
        SourceStatus(
            "prompt",
            interactive,
            "stdin is a terminal" if interactive else "stdin is not a terminal",
        ),
    ]
    return statuses


def answering_source(statuses: list[SourceStatus]) -> str | None:
    """The step that would supply the password: the first available, as the chain walks."""
    return next((status.name for status in statuses if status.available), None)


def _env_detail(environ: Mapping[str, str]) -> str:
    return f"{ENV_VAR} is set" if environ.get(ENV_VAR) else f"{ENV_VAR} is not set"


def _keyring_status(key: str) -> SourceStatus:
    try:
        stored = keyring_get(key)
    except KeyringUnavailable as exc:
        return SourceStatus("keyring", False, str(exc))
    if stored is None:
        return SourceStatus("keyring", False, f"no entry for service {SERVICE!r}, user {key!r}")
    return SourceStatus("keyring", True, f"entry found for service {SERVICE!r}, user {key!r}")


def netrc_lookup(key: str, environ: Mapping[str, str]) -> NetrcAnswer:
    """The netrc's answer for `key` (USER@HOST: the user may hold an @ itself)."""
    from mailcli.auth.netrc import NetrcAnswer, lookup

    user, at, host = key.rpartition("@")
    if not at:
        return NetrcAnswer(None, f"{key!r} is not USER@HOST")
    return lookup(host, user, environ)


def _netrc_status(key: str, environ: Mapping[str, str]) -> SourceStatus:
    try:
        answer = netrc_lookup(key, environ)
    except CredentialsError as exc:  # refused: the chain would stop here with this
        return SourceStatus("netrc", False, exc.message)
    return SourceStatus("netrc", answer.password is not None, answer.detail)
