"""A Secret Service that never answers (gnome-keyring stopped with SIGSTOP: the bus still
routes the calls, nobody replies). The keyring lookup is bounded: `stat` ends with 78
naming the keyring, and `sendmail` queues the message it holds (exit 0, the notice on
stderr) instead of hanging for ever. The subprocess timeout below is only a guard far
above the bound; nothing here measures how long anything took."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import run_process
from tests.servers import NEEDS, require
from tests.servers.certs import Certs
from tests.servers.keyring_service import SecretService
from tests.servers.pop3scripts import pop3_server
from tests.servers.scripted import ScriptedServer
from tests.servers.smtpd import AioSmtpd

GUARD = 90  # seconds: a hang fails the test here instead of wedging the suite


@pytest.fixture(scope="module")
def frozen_keyring() -> Iterator[SecretService]:
    require(*NEEDS["secret_service"])
    with SecretService() as service:
        service.freeze()
        try:
            yield service
        finally:
            service.thaw()


def client_env(service: SecretService, home: Path) -> dict[str, str]:
    """The frozen Secret Service as the only way to a password; config and queue in `home`."""
    env = service.subprocess_env()
    env.pop("MAILCLI_PASSWORD", None)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["XDG_STATE_HOME"] = str(home / ".local" / "state")
    return env


def test_sendmail_with_a_hung_keyring_queues_the_message(
    frozen_keyring: SecretService,
    aiosmtpd_factory: Callable[..., AioSmtpd],
    certs: Certs,
    tmp_path: Path,
) -> None:
    server = aiosmtpd_factory(tls_context=certs.server_context(), users={"alice": "pw"})
    config = tmp_path / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[accounts.cron]\nfrom = "cron@example.test"\ndomain = "example.test"\nuser = "alice"\n'
        f'[accounts.cron.smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
        f'security = "starttls"\ncafile = "{certs.ca_pem}"\n'
    )
    done = run_process(
        ["sendmail", "-i", "bob@example.test"],
        env=client_env(frozen_keyring, tmp_path),
        input=b"Subject: held\n\nthe job's output\n",
        timeout=GUARD,
    )
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert err.startswith("mailcli: queued: ") and err.count("\n") == 1, err
    assert "keyring" in err and "did not answer" in err
    queue = tmp_path / ".local" / "state" / "mailcli" / "queue"
    (entry,) = queue.glob("*.json")
    assert "did not answer" in json.loads(entry.read_text())["last_error"]
    assert b"the job's output" in entry.with_suffix(".eml").read_bytes()
    assert server.received == []


# A POP3 server that wants a password: only the keyring could give one.
pop3_script = pop3_server(["USER"])


def test_stat_with_a_hung_keyring_is_78_naming_it(
    frozen_keyring: SecretService, tmp_path: Path
) -> None:
    with ScriptedServer(pop3_script) as server:
        options = ["--host", "127.0.0.1", "--port", str(server.port), "--security", "none"]
        try:
            done = run_process(
                ["stat", "--timeout", "5", *options, "--user", "alice"],
                env=client_env(frozen_keyring, tmp_path),
                timeout=GUARD,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"stat did not end within {GUARD} s with the keyring stopped")
    err = done.stderr.decode()
    assert done.returncode == 78, err
    assert err.count("\n") == 1 and err.startswith("mailcli: error: no password for alice@")
    assert "keyring unavailable: the keyring did not answer" in err
    assert "PASS" not in " ".join(server.received)
