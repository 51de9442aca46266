"""The keyring step of the credential chain against a real Secret Service
(gnome-keyring on a private D-Bus), in real processes: what a desktop user gets, and
what a locked keyring or a host without D-Bus gets."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import run_process
from tests.servers import NEEDS, require
from tests.servers.accounts import Account
from tests.servers.certs import Certs
from tests.servers.keyring_service import SecretService
from tests.servers.smtpd import AioSmtpd

KEY = "alice@127.0.0.1"
PASSWORD = "kr-Secret-9"


@pytest.fixture(scope="module")
def locked_service() -> Iterator[SecretService]:
    require(*NEEDS["secret_service"])
    with SecretService(locked=True) as service:
        yield service


def send_as_alice(
    server: AioSmtpd, certs: Certs, env: dict[str, str], body: str = "x"
) -> subprocess.CompletedProcess[bytes]:
    """alice sends with no password given: only the keyring can answer. ``env`` is the
    whole environment (it removes keys, so it is not merged over this process's)."""
    alice = Account.smtpd(server, "alice", cafile=certs.ca_pem)
    message = ["--from", "alice@example.test", "--to", "bob@example.test", "--body", body]
    return run_process(["send", *message, *alice.args()], env=env)


def test_set_where_use_and_delete_through_the_real_keyring(
    secret_service: SecretService,
    aiosmtpd_factory: Callable[..., AioSmtpd],
    certs: Certs,
) -> None:
    env = secret_service.subprocess_env()
    stored = run_process(["password", "set", KEY], env=env, input=f"{PASSWORD}\n".encode())
    assert stored.returncode == 0, stored.stderr
    assert b"SecretService" in stored.stderr
    where = json.loads(run_process(["password", "where", KEY, "--json"], env=env).stdout)
    assert where["logins"][0]["answer"] == "keyring"

    server = aiosmtpd_factory(tls_context=certs.server_context(), users={"alice": PASSWORD})
    sent = send_as_alice(server, certs, env, "via keyring")
    assert sent.returncode == 0, sent.stderr
    assert server.received[0].login == "alice"

    deleted = run_process(["password", "delete", KEY], env=env)
    assert deleted.returncode == 0 and f"deleted {KEY}".encode() in deleted.stderr
    where = json.loads(run_process(["password", "where", KEY, "--json"], env=env).stdout)
    assert where["logins"][0]["answer"] is None


def test_locked_keyring_exits_78_with_the_reason(
    locked_service: SecretService, aiosmtpd_factory: Callable[..., AioSmtpd], certs: Certs
) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users={"alice": PASSWORD})
    done = send_as_alice(server, certs, locked_service.subprocess_env())
    assert done.returncode == 78
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"mailcli: error: no password for {KEY} and no terminal")
    assert "MAILCLI_PASSWORD" in lines[0] and "mailcli password set" in lines[0]
    assert "(keyring unavailable: " in lines[0]
    assert "Prompt dismissed" in lines[0] or "locked" in lines[0]
    assert "Traceback" not in done.stderr.decode()
    assert not server.saw_command("AUTH")


def test_no_dbus_at_all_exits_78_naming_the_ways(
    aiosmtpd_factory: Callable[..., AioSmtpd], certs: Certs
) -> None:
    """A cron-like environment: no D-Bus, keyring left to find its own backend."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")
    }
    server = aiosmtpd_factory(tls_context=certs.server_context(), users={"alice": PASSWORD})
    done = send_as_alice(server, certs, env)
    assert done.returncode == 78
    err = done.stderr.decode()
    assert err.count("\n") == 1
    assert err.startswith(f"mailcli: error: no password for {KEY}")
    assert "keyring unavailable" in err
    for way in ("MAILCLI_PASSWORD", "password_command", "mailcli password set"):
        assert way in err
    assert "Traceback" not in err
