"""The OAuth2 token store (keyring and file) and the bearer source's refresh rules.

The token endpoint is exercised against a real authorization server in
tests/auth/test_oauth_flows.py; here a refresh is a small function handed to
`OAuthBearer(refresher=...)`, so each rule (margin, rotation, invalid_grant, an
unreachable endpoint) is exercised alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcli.auth.oauth.access import OAuthBearer, expiry_text, refresh_margin
from mailcli.auth.oauth.store import (
    CHUNK,
    FileTokenStore,
    KeyringTokenStore,
    TokenStore,
    lock_path,
    token_store,
)
from mailcli.auth.oauth.tokens import OAuthGrantError, TokenSet
from mailcli.config import OAuthSettings, TokenStoreKind
from mailcli.errors import (
    CredentialsError,
    ExitStatus,
    LocalIOError,
    PermissionDeniedError,
    TempFailError,
)
from tests.helpers import LockedKeyring, MemoryKeyring, Result, run_cli
from tests.servers.keyring_service import SecretService
from tests.servers.ports import free_port

NOW = 1_800_000_000.0
GOOGLE = OAuthSettings(provider="google", client_id="cid")
CUSTOM_FILE = OAuthSettings(
    provider="custom", authorize_url="https://a.test/a", token_url="https://a.test/t",
    token_store="file",
)  # fmt: skip


def tokens(access: str = "at-1", refresh: str | None = "rt-1", *, lifetime: float = 3600.0,
           expires_at: float | None = None) -> TokenSet:  # fmt: skip
    return TokenSet(
        access_token=access,
        expires_at=NOW + lifetime if expires_at is None else expires_at,
        refresh_token=refresh,
        scope="https://mail.google.com/",
        lifetime=lifetime,
        identity="alice@example.test",
    )


# -- keyring -------------------------------------------------------------------------------


def test_keyring_round_trip_under_the_documented_names(memory_keyring: MemoryKeyring) -> None:
    store = token_store("work", GOOGLE)
    assert isinstance(store, KeyringTokenStore)
    assert store.load() is None
    store.save(tokens())
    assert store.load() == tokens()
    record = json.loads(memory_keyring.entries[("mailcli", "oauth:google:work")])
    cache = json.loads(memory_keyring.entries[("mailcli", "oauth:google:work:access")])
    assert record["refresh_token"] == "rt-1" and "access_token" not in record
    assert cache["access_token"] == "at-1" and cache["expires_at"] == NOW + 3600
    assert store.where() == "keyring (service 'mailcli', user 'oauth:google:work')"
    assert store.clear() is True
    assert memory_keyring.entries == {} and store.load() is None
    assert store.clear() is False


def test_values_over_1200_characters_are_split_and_rejoined(
    memory_keyring: MemoryKeyring,
) -> None:
    store = token_store("work", GOOGLE)
    long_token = "x" * (2 * CHUNK + 500)  # a Microsoft access token is 2-3 KB
    store.save(tokens(access=long_token))
    names = sorted(user for _, user in memory_keyring.entries)
    assert names == [
        "oauth:google:work",
        "oauth:google:work:access",
        "oauth:google:work:access#1",
        "oauth:google:work:access#2",
        "oauth:google:work:access#3",
    ]
    assert all(len(value) <= CHUNK for value in memory_keyring.entries.values())
    assert store.load() == tokens(access=long_token)
    store.save(tokens(access="short"))  # the old pieces go
    assert len(memory_keyring.entries) == 2 and store.load() == tokens(access="short")


def test_pieces_that_do_not_fit_together_are_reported_not_used(
    memory_keyring: MemoryKeyring,
) -> None:
    store = token_store("work", GOOGLE)
    store.save(tokens(access="y" * (CHUNK + 1)))
    memory_keyring.entries[("mailcli", "oauth:google:work:access#2")] = "z"  # a cut-short write
    with pytest.raises(CredentialsError, match="damaged") as caught:
        store.load()
    assert caught.value.exit_status == ExitStatus.CONFIG
    assert "oauth login -a work" in (caught.value.hint or "")


def test_an_unusable_keyring_is_78_naming_the_file_store_never_a_silent_fallback(
    isolated_environment: Path,
) -> None:
    import keyring

    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        with pytest.raises(CredentialsError) as caught:
            token_store("work", GOOGLE).save(tokens())
    finally:
        keyring.set_keyring(previous)
    assert caught.value.exit_status == ExitStatus.CONFIG
    assert "locked" in caught.value.message
    assert 'token_store = "file"' in (caught.value.hint or "")
    assert not (isolated_environment / ".local" / "state" / "mailcli" / "oauth").exists()


def test_round_trip_through_a_real_secret_service(secret_service: SecretService) -> None:
    """gnome-keyring on a private D-Bus, in a real process: save a 3 KB token, read it back."""
    probe = (
        "import json, sys\n"
        "from mailcli.auth.oauth.store import token_store\n"
        "from mailcli.auth.oauth.tokens import TokenSet\n"
        "from mailcli.config import OAuthSettings\n"
        "store = token_store('work', OAuthSettings(provider='microsoft'))\n"
        "store.save(TokenSet('t' * 3000, 1.0e10, 'r' * 1300, 'scope-a', 3600.0, 'a@x.test'))\n"
        "loaded = store.load()\n"
        "print(json.dumps([len(loaded.access_token), len(loaded.refresh_token),"
        " loaded.identity, store.clear(), store.load() is None]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=secret_service.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [3000, 1300, "a@x.test", True, True]


# -- file ----------------------------------------------------------------------------------


def file_store(home: Path) -> FileTokenStore:
    store = token_store("work", CUSTOM_FILE)
    assert isinstance(store, FileTokenStore)
    return store


def test_file_store_round_trip_0600_in_0700_folders(isolated_environment: Path) -> None:
    store = file_store(isolated_environment)
    store.save(tokens())
    state = isolated_environment / ".local" / "state" / "mailcli" / "oauth"
    assert store.record_path == state / "work.json"
    assert store.cache_path == isolated_environment / ".cache" / "mailcli" / "oauth" / "work.json"
    for path in (store.record_path, store.cache_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "at-1" not in store.record_path.read_text()  # the access token only in the cache
    assert store.load() == tokens()
    assert store.where() == f"file {store.record_path}"
    store.save(tokens(access="at-2", refresh="rt-2"))
    assert sorted(os.listdir(state)) == ["work.json"]  # replaced by rename: no temporaries
    assert store.load() == tokens(access="at-2", refresh="rt-2")
    assert store.clear() is True and store.load() is None


def test_an_account_name_is_no_path(isolated_environment: Path) -> None:
    store = token_store("../../evil", CUSTOM_FILE)
    assert isinstance(store, FileTokenStore)
    store.save(tokens())
    assert store.record_path.parent.name == "oauth"
    assert store.record_path.name == "..%2F..%2Fevil.json"


def test_a_symlink_at_the_token_file_is_refused_and_never_written_through(
    isolated_environment: Path,
) -> None:
    store = file_store(isolated_environment)
    store.save(tokens())
    target = isolated_environment / "elsewhere.json"
    target.write_text(store.record_path.read_text())
    target.chmod(0o600)
    store.record_path.unlink()
    store.record_path.symlink_to(target)
    with pytest.raises(CredentialsError, match="symbolic link"):
        store.load()
    before = target.read_bytes()
    store.save(tokens(refresh="rt-2"))  # the rename replaces the link, not its target
    assert target.read_bytes() == before
    assert not store.record_path.is_symlink() and store.load() == tokens(refresh="rt-2")


def test_a_token_file_others_can_read_is_refused(isolated_environment: Path) -> None:
    store = file_store(isolated_environment)
    store.save(tokens())
    store.record_path.chmod(0o644)
    with pytest.raises(CredentialsError, match="readable by others") as caught:
        store.load()
    assert caught.value.exit_status == ExitStatus.CONFIG


# -- the bearer source ---------------------------------------------------------------------


class Refresher:
    """A stand-in for tokens.refresh: hands out numbered tokens, or raises."""

    def __init__(self, *, lifetime: float = 3600.0, rotate: bool = True) -> None:
        self.calls: list[str] = []
        self.lifetime = lifetime
        self.rotate = rotate
        self.error: Exception | None = None

    def __call__(self, refresh_token: str) -> TokenSet:
        self.calls.append(refresh_token)
        if self.error is not None:
            raise self.error
        number = len(self.calls) + 1
        rotated = f"rt-{number}" if self.rotate else refresh_token
        return tokens(f"at-{number}", rotated, lifetime=self.lifetime, expires_at=NOW + 1000)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def bearer(
    store: TokenStore, refresher: Refresher, clock: Callable[[], float], settings: OAuthSettings
) -> OAuthBearer:
    return OAuthBearer("work", settings, clock=clock, refresher=refresher, store=store)


def test_refresh_margin_is_60_s_or_a_tenth_of_the_lifetime_when_shorter() -> None:
    assert refresh_margin(3600) == 60
    assert refresh_margin(600) == 60
    assert refresh_margin(300) == 30
    assert refresh_margin(0) == 60  # lifetime unknown


@pytest.mark.parametrize(("lifetime", "margin"), [(3600.0, 60.0), (300.0, 30.0)])
def test_a_token_is_refreshed_only_inside_its_margin(
    isolated_environment: Path, lifetime: float, margin: float
) -> None:
    store, refresher, clock = file_store(isolated_environment), Refresher(), Clock()
    store.save(tokens(lifetime=lifetime, expires_at=NOW + 1000))
    source = bearer(store, refresher, clock, CUSTOM_FILE)
    clock.now = NOW + 1000 - margin - 1
    assert source() == "at-1" and refresher.calls == []
    clock.now = NOW + 1000 - margin + 1
    assert source() == "at-2" and refresher.calls == ["rt-1"]
    assert store.load() == tokens("at-2", "rt-2", expires_at=NOW + 1000)


def test_renew_refreshes_even_a_fresh_token(isolated_environment: Path) -> None:
    store, refresher = file_store(isolated_environment), Refresher(rotate=False)
    store.save(tokens())
    assert bearer(store, refresher, Clock(), CUSTOM_FILE).renew() == "at-2"
    assert refresher.calls == ["rt-1"] and store.load().refresh_token == "rt-1"  # type: ignore[union-attr]


class FailingSave(FileTokenStore):
    def save(self, tokens: TokenSet, *, client_secret: str | None = None) -> None:
        raise LocalIOError("cannot write the OAuth2 token file: No space left on device")


def test_a_rotated_token_that_cannot_be_saved_is_never_used(isolated_environment: Path) -> None:
    """The new access token is handed out only after the rotated refresh token is stored:
    using it first would leave only the dead refresh token on disk."""
    store = FailingSave("work", "custom", {**os.environ})
    FileTokenStore.save(store, tokens(expires_at=NOW))
    refresher = Refresher()
    with pytest.raises(LocalIOError):
        bearer(store, refresher, Clock(), CUSTOM_FILE)()
    assert refresher.calls == ["rt-1"]


@pytest.mark.parametrize("settings", [GOOGLE, CUSTOM_FILE])
def test_invalid_grant_clears_the_tokens_and_is_77_with_the_hint(
    memory_keyring: MemoryKeyring, isolated_environment: Path, settings: OAuthSettings
) -> None:
    store = token_store("work", settings)
    store.save(tokens(expires_at=NOW))
    refresher = Refresher()
    refresher.error = OAuthGrantError(
        "the token endpoint refused the refresh token (invalid_grant)", error="invalid_grant"
    )
    with pytest.raises(PermissionDeniedError) as caught:
        bearer(store, refresher, Clock(), settings)()
    assert caught.value.exit_status == ExitStatus.NOPERM
    assert "refresh token" in caught.value.message and "rt-1" not in caught.value.message
    hint = caught.value.hint or ""
    assert "mailcli oauth login -a work" in hint
    assert ("Testing" in hint and "7 days" in hint) == (settings.provider == "google")
    assert store.load() is None
    with pytest.raises(PermissionDeniedError, match="not logged in"):
        bearer(store, refresher, Clock(), settings)()
    assert len(refresher.calls) == 1


def test_an_unreachable_endpoint_is_75_and_keeps_the_tokens(isolated_environment: Path) -> None:
    store, refresher = file_store(isolated_environment), Refresher()
    store.save(tokens(expires_at=NOW))
    refresher.error = TempFailError("cannot reach the token endpoint a.test: refused")
    with pytest.raises(TempFailError):
        bearer(store, refresher, Clock(), CUSTOM_FILE)()
    assert store.load() == tokens(expires_at=NOW)


def test_not_logged_in_is_77_naming_the_login_command(isolated_environment: Path) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        bearer(file_store(isolated_environment), Refresher(), Clock(), CUSTOM_FILE)()
    assert caught.value.exit_status == ExitStatus.NOPERM
    assert "not logged in" in caught.value.message
    assert "`mailcli oauth login -a work`" in caught.value.message


def test_status_never_holds_a_token(isolated_environment: Path) -> None:
    store = file_store(isolated_environment)
    store.save(tokens())
    status = bearer(store, Refresher(), Clock(), CUSTOM_FILE).status()
    assert status["logged_in"] and status["access_token_valid"] and status["refresh_token"]
    assert status["identity"] == "alice@example.test"
    assert status["access_token_expires"] == "2027-01-15T09:00:00+00:00"
    assert "at-1" not in json.dumps(status) and "rt-1" not in json.dumps(status)


class SignallingStore(FileTokenStore):
    """Signals its first load: the bearer has read the (stale) tokens."""

    def __init__(self) -> None:
        super().__init__("work", "custom", {**os.environ})
        self.first_load = threading.Event()

    def load(self) -> TokenSet | None:
        loaded = super().load()
        self.first_load.set()
        return loaded


def test_a_refresh_waits_for_another_process_refreshing_and_uses_its_token(
    isolated_environment: Path,
) -> None:
    """Two cron jobs at the same minute: the second waits on the account's lock, then
    finds the first one's fresh token and never sends the refresh token the first has
    had rotated away (the provider would answer invalid_grant and the tokens be lost)."""
    store, refresher = SignallingStore(), Refresher()
    store.save(tokens(expires_at=NOW))  # expired
    lock = lock_path("work", isolated_environment / ".local" / "state" / "mailcli")
    lock.parent.mkdir(parents=True, exist_ok=True)
    answers: list[str] = []
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other process, refreshing
        waiting = threading.Thread(
            target=lambda: answers.append(bearer(store, refresher, Clock(), CUSTOM_FILE)())
        )
        waiting.start()
        assert store.first_load.wait(30)
        FileTokenStore.save(store, tokens("at-other", "rt-other", expires_at=NOW + 3600))
    waiting.join(30)
    assert answers == ["at-other"] and refresher.calls == []


# -- a client secret given at login ----------------------------------------------------------


def test_keyring_keeps_a_client_secret_under_its_own_entry(memory_keyring: MemoryKeyring) -> None:
    store = token_store("work", GOOGLE)
    assert store.client_secret() is None
    store.save(tokens(), client_secret="cs-1")
    entry = json.loads(memory_keyring.entries[("mailcli", "oauth:google:work:client")])
    assert entry == {"provider": "google", "client_secret": "cs-1"}
    assert not any("cs-1" in value for (_, user), value in memory_keyring.entries.items()
                   if user != "oauth:google:work:client")  # fmt: skip
    store.save(tokens(access="at-2", refresh="rt-2"))  # a refresh keeps it
    assert store.client_secret() == "cs-1"
    assert store.clear() is True and store.load() is None  # invalid_grant: the tokens only
    assert store.client_secret() == "cs-1"
    store.save(tokens())
    assert store.clear(client_secret=True) is True  # logout: everything
    assert memory_keyring.entries == {} and store.client_secret() is None


def test_file_store_keeps_a_client_secret_in_a_0600_file_beside_the_record(
    isolated_environment: Path,
) -> None:
    store = file_store(isolated_environment)
    store.save(tokens(), client_secret="cs-1")
    path = isolated_environment / ".local" / "state" / "mailcli" / "oauth" / "client" / "work.json"
    assert store.client_path == path
    assert json.loads(path.read_text()) == {"provider": "custom", "client_secret": "cs-1"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "cs-1" not in store.record_path.read_text() + store.cache_path.read_text()
    store.save(tokens(access="at-2", refresh="rt-2"))
    assert store.client_secret() == "cs-1"
    store.clear()
    assert store.client_secret() == "cs-1" and store.load() is None
    assert store.clear(client_secret=True) is True and not path.exists()
    assert store.clear(client_secret=True) is False
    store.save(tokens(), client_secret="cs-1")
    assert FileTokenStore("work", "google", {**os.environ}).client_secret() is None


@pytest.mark.parametrize(
    ("config", "stored", "expected", "source"),
    [
        ({"client_secret": "from-config"}, "cs-stored", "from-config", "config"),
        ({"client_secret_command": "echo from-command"}, "cs-stored", "from-command", "command"),
        ({}, "cs-stored", "cs-stored", "stored"),
        ({}, None, None, "none"),
    ],
)
def test_the_client_secret_comes_from_config_command_store_or_nowhere(
    isolated_environment: Path,
    config: dict[str, Any],
    stored: str | None,
    expected: str | None,
    source: str,
) -> None:
    settings = OAuthSettings(
        provider="custom", client_id="cid", authorize_url="https://a.test/a",
        token_url="https://a.test/t", token_store="file", **config,
    )  # fmt: skip
    store = file_store(isolated_environment)
    store.save(tokens(), client_secret=stored)
    source_bearer = bearer(store, Refresher(), Clock(), settings)
    assert source_bearer.client().client_secret == expected
    status = source_bearer.status()
    assert status["client_secret"] == source
    assert "cs-stored" not in json.dumps(status) and "from-" not in json.dumps(status)


def test_invalid_grant_keeps_the_client_secret_for_the_next_login(
    isolated_environment: Path,
) -> None:
    store, refresher = file_store(isolated_environment), Refresher()
    store.save(tokens(expires_at=NOW), client_secret="cs-1")
    refresher.error = OAuthGrantError("refused (invalid_grant)", error="invalid_grant")
    with pytest.raises(PermissionDeniedError) as caught:
        bearer(store, refresher, Clock(), CUSTOM_FILE)()
    assert "cs-1" not in str(caught.value) + (caught.value.hint or "")
    assert store.load() is None and store.client_secret() == "cs-1"


# -- stored data is validated: 78 naming where it is, never 70 -----------------------------
# Every field of every stored document (record, access-token cache, client secret), in
# the keyring and in files: a wrong type, a number out of range, NaN, deep nesting.

FIELDS = {
    "record": ("provider", "refresh_token", "scope", "identity", "lifetime"),
    "cache": ("access_token", "expires_at", "lifetime"),
    "client": ("provider", "client_secret"),
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def oauth_config(config_file: Path, kind: TokenStoreKind) -> OAuthSettings:
    """An account `work` whose token endpoint is a closed loopback port (a refresh is 75
    at once, and nothing leaves the machine)."""
    token_url = f"http://127.0.0.1:{free_port()}/token"
    config_file.write_text(
        '[accounts.work]\nfrom = "a@example.test"\n[accounts.work.oauth2]\n'
        f'provider = "custom"\nclient_id = "cid"\nauthorize_url = "https://a.test/a"\n'
        f'token_url = "{token_url}"\ntoken_store = "{kind}"\n'
    )
    return OAuthSettings(
        provider="custom", client_id="cid", authorize_url="https://a.test/a",
        token_url=token_url, token_store=kind,
    )  # fmt: skip


def where_stored(store: TokenStore, part: str) -> str:
    if isinstance(store, FileTokenStore):
        return str(store.path(part))
    assert isinstance(store, KeyringTokenStore)
    return store.key(part)


def replace_stored(store: TokenStore, part: str, text: str, keyring: MemoryKeyring) -> None:
    if isinstance(store, FileTokenStore):
        store.path(part).write_text(text)
    else:
        assert isinstance(store, KeyringTokenStore)
        keyring.entries[("mailcli", store.key(part))] = text


def tamper(store: TokenStore, part: str, field: str, value: object, keyring: MemoryKeyring) -> None:
    if isinstance(store, FileTokenStore):
        document = json.loads(store.path(part).read_text())
    else:
        assert isinstance(store, KeyringTokenStore)
        document = json.loads(keyring.entries[("mailcli", store.key(part))])
    document[field] = value
    replace_stored(store, part, json.dumps(document), keyring)


def logged_in(config_file: Path, kind: TokenStoreKind) -> TokenStore:
    settings = oauth_config(config_file, kind)
    store = token_store("work", settings)
    store.clear(client_secret=True)
    store.save(tokens(expires_at=time.time() + 3600), client_secret="cs-1")
    return store


def assert_result_or_78_naming(result: Result, where: str, allowed: tuple[int, ...]) -> None:
    assert result.code in (*allowed, 78), result.stderr
    assert "Traceback" not in result.stderr
    if result.code == 78:
        assert where in result.stderr.splitlines()[0], result.stderr


@pytest.mark.parametrize("kind", ["file", "keyring"])
def test_a_cache_with_a_null_expiry_is_78_naming_where_it_is(
    config_file: Path, memory_keyring: MemoryKeyring, kind: TokenStoreKind
) -> None:
    store = logged_in(config_file, kind)
    tamper(store, "cache", "expires_at", None, memory_keyring)
    for command in (["oauth", "status"], ["oauth", "token"]):
        result = run_cli(command)
        assert result.code == 78, result.stderr
        first = result.stderr.splitlines()[0]
        assert where_stored(store, "cache") in first and "expires_at" in first


NASTY: list[object] = [None, "soon", float("inf"), float("nan"), 10**400, -1e300, 1e300, True]
NASTY += [[], {}]


@pytest.mark.parametrize("value", NASTY, ids=repr)
@pytest.mark.parametrize(("part", "field"), [("cache", "expires_at"), ("record", "lifetime")])
def test_numbers_that_are_no_time_are_78(
    config_file: Path, memory_keyring: MemoryKeyring, part: str, field: str, value: object
) -> None:
    store = logged_in(config_file, "file")
    tamper(store, part, field, value, memory_keyring)
    result = run_cli(["oauth", "status"])
    assert result.code == 78, result.stderr
    assert where_stored(store, part) in result.stderr


@pytest.mark.parametrize("part", sorted(FIELDS))
@pytest.mark.parametrize("kind", ["file", "keyring"])
def test_json_nested_too_deep_is_78(
    config_file: Path, memory_keyring: MemoryKeyring, kind: TokenStoreKind, part: str
) -> None:
    store = logged_in(config_file, kind)
    replace_stored(store, part, "[" * 100_000 + "]" * 100_000, memory_keyring)
    result = run_cli(["oauth", "status"])
    assert result.code == 78, result.stderr
    assert where_stored(store, part) in result.stderr


def test_logout_forgets_damaged_tokens(config_file: Path, memory_keyring: MemoryKeyring) -> None:
    store = logged_in(config_file, "keyring")
    for part in FIELDS:
        replace_stored(store, part, '{"provider": 5}', memory_keyring)
    assert run_cli(["oauth", "status"]).code == 78
    assert run_cli(["oauth", "logout"]).code == 0
    assert memory_keyring.entries == {}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_json_in_any_stored_field_is_a_result_or_78_never_70(
    config_file: Path, memory_keyring: MemoryKeyring, data: st.DataObject
) -> None:
    kinds: list[TokenStoreKind] = ["file", "keyring"]
    kind = data.draw(st.sampled_from(kinds))
    part = data.draw(st.sampled_from(sorted(FIELDS)))
    field = data.draw(st.sampled_from(FIELDS[part]))
    store = logged_in(config_file, kind)
    tamper(store, part, field, data.draw(JSON_VALUES), memory_keyring)
    where = where_stored(store, part)
    assert_result_or_78_naming(run_cli(["oauth", "status"]), where, (0,))
    # a valid token printed, a refresh at the closed endpoint (75), none to refresh (77)
    assert_result_or_78_naming(run_cli(["oauth", "token"]), where, (0, 75, 77))


@pytest.mark.parametrize("epoch", [1e300, -1e300, float("inf"), float("nan")])
def test_an_expiry_datetime_cannot_show_is_words_not_an_error(epoch: float) -> None:
    """A token endpoint's absurd expires_in reaches `oauth login`'s message as is."""
    assert expiry_text(epoch) in ("beyond the year 9999", "not a time")
