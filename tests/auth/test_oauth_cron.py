"""OAuth2 unattended, end to end: log in once with `mailcli oauth login --browser`,
then `mailcli send` and `mailcli fetch` run as cron would, for many runs, against the real
Dovecot (oauth2 passdb) and Postfix through it, with the test authorization server.

Every run's access token is due for refresh without waiting on the clock: the server
reports `expires_in` 1e-9 s (`reported_lifetime`) while the JWT itself is valid for an hour,
so the next run, a new process, always finds its cached token expired and refreshes it;
Dovecot still accepts the token the refresh returns. Each run is a real `python -m mailcli`
process with --trace, and everything it printed is kept to be searched for tokens.
"""

from __future__ import annotations

import base64
import binascii
import email
import fcntl
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import MAILCLI, Result, oauth_token_files, run_cli, write_config
from tests.servers import jwt
from tests.servers.authserver import AuthServer
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.keyring_service import SecretService
from tests.servers.oauthlogin import browser_login
from tests.servers.postfix import Postfix

ACCOUNT = "work"
DUE_AT_ONCE = 1e-9  # expires_in reported: the next run finds the token due for refresh

# Writes its argv, its environment and its stdin to a new file in DUMP_DIR; as the
# client_secret_command it prints the client secret, as the MDA it delivers nowhere.
DUMP_SCRIPT = """\
import json, os, sys, tempfile
data = sys.stdin.buffer.read().decode("utf-8", "replace") if sys.argv[1] == "mda" else ""
handle, _ = tempfile.mkstemp(dir=os.environ["DUMP_DIR"], suffix=".json")
with os.fdopen(handle, "w") as out:
    json.dump({"argv": sys.argv, "env": dict(os.environ), "stdin": data}, out)
if sys.argv[1] == "secret":
    print("client-secret-not-checked")
"""


class Cron:
    """One OAuth2 account on the test servers, driven through real `mailcli` processes;
    every run's output is kept (`runs`) for the leak scan."""

    def __init__(
        self,
        home: Path,
        config: Path,
        dovecot: Dovecot,
        postfix: Postfix,
        *,
        token_store: str = "file",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home, self.config, self.dovecot, self.postfix = home, config, dovecot, postfix
        self.token_store = token_store
        self.mailbox: Mailbox = make_mailbox(dovecot, "cron")
        self.server = AuthServer(dovecot.oauth2_key, email=self.mailbox.user)
        self.maildir = home / "Mail"
        self.dumps = home.parent / "dumps"
        self.dumps.mkdir()
        script = home.parent / "dump.py"
        script.write_text(DUMP_SCRIPT)
        self.dump_command = f"{sys.executable} {script}"
        temporary = home.parent / "tmp"  # any temporary file mailcli makes is scanned too
        temporary.mkdir()
        self.env = {
            **(env if env is not None else os.environ),
            "DUMP_DIR": str(self.dumps),
            "TMPDIR": str(temporary),
        }
        self.runs: list[Result] = []
        ca = dovecot.certs.ca_pem
        servers = (
            f'from = "{self.mailbox.address}"\n'
            f'[accounts.work.pop3]\nhost = "127.0.0.1"\nport = {dovecot.pop3_port}\n'
            f'cafile = "{ca}"\n[accounts.work.smtp]\nhost = "127.0.0.1"\n'
            f'port = {postfix.submission_port}\ncafile = "{ca}"\n'
            f'[accounts.work.fetch]\nto = "maildir:{self.maildir}"\n'
        )
        write_config(
            config,
            self.server,
            user=self.mailbox.user,
            servers=servers,
            token_store=token_store,
            client_secret_command=f"{self.dump_command} secret",
        )

    # -- running mailcli ---------------------------------------------------------------

    def login(self) -> None:
        code, out, err = browser_login(self.env)
        self.runs.append(Result(code, out, err))
        assert code == 0, err

    def run(self, *args: str, input: bytes | None = None) -> Result:
        done = subprocess.run(
            [*MAILCLI, "--trace", *args],
            input=input,
            capture_output=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        result = Result(done.returncode, done.stdout.decode(), done.stderr.decode())
        self.runs.append(result)
        return result

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*MAILCLI, "--trace", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )

    def finish(self, job: subprocess.Popen[bytes]) -> Result:
        out, err = job.communicate(timeout=60)
        result = Result(job.returncode, out.decode(), err.decode())
        self.runs.append(result)
        return result

    def send(self, subject: str) -> Result:
        address = self.mailbox.address
        return self.run("send", "--to", address, "--subject", subject, "--body", subject)

    # -- what the servers and files say --------------------------------------------------

    def refresh_token(self) -> str | None:
        """The stored refresh token (None when logged out), from the file or the keyring."""
        record = self.stored("record")
        return None if record is None else str(record["refresh_token"])

    def stored(self, part: str) -> dict[str, Any] | None:
        """The store's "record" (refresh token) or "cache" (access token), as mailcli
        wrote it: a file, or the keyring entry read by another process."""
        if self.token_store == "file":
            path = self.token_files()[0 if part == "record" else 1]
            return json.loads(path.read_text()) if path.exists() else None
        key = f"oauth:custom:{ACCOUNT}" + ("" if part == "record" else ":access")
        code = f"import keyring; print(keyring.get_password('mailcli', {key!r}) or 'null')"
        done = subprocess.run(
            [sys.executable, "-c", code], env=self.env, capture_output=True, check=True
        )
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def forge_cached_access_token(self) -> None:
        """Replace the cached access token by one signed with another key, valid for an
        hour by its expiry: mailcli thinks it good, Dovecot refuses it (file store)."""
        cache = self.token_files()[1]
        document = json.loads(cache.read_text())
        document["access_token"] = jwt.mint(jwt.new_key(), self.mailbox.user, lifetime=3600)
        document["expires_at"] = float(str(jwt.claims(document["access_token"])["exp"]))
        cache.write_text(json.dumps(document))

    def token_files(self) -> list[Path]:
        return list(oauth_token_files(self.home, ACCOUNT))

    def refused_at_endpoint(self, refresh_token: str) -> bool:
        """Whether /token now answers this refresh token with invalid_grant (a probe the
        test makes: counted apart in `probes`)."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.server.client_id,
        }
        request = urllib.request.Request(
            self.server.url("/token"), data=urllib.parse.urlencode(form).encode()
        )
        self.server.requests["probe"] += 1
        try:
            with urllib.request.urlopen(request, timeout=30):
                return False
        except urllib.error.HTTPError as answer:
            return bool(json.loads(answer.read())["error"] == "invalid_grant")

    def token_requests(self) -> int:
        """Requests to /token made by mailcli (not by the test's probes)."""
        return self.server.requests["/token"] - self.server.requests["probe"]

    def local_subjects(self) -> list[str]:
        """The Subject of every message fetched into the local Maildir."""
        files = [p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*")]
        return sorted(str(email.message_from_bytes(p.read_bytes())["Subject"]) for p in files)

    def delivered_subjects(self) -> list[str]:
        files = self.postfix.messages(self.mailbox.user)
        return sorted(str(email.message_from_bytes(p.read_bytes())["Subject"]) for p in files)

    # -- no leak -----------------------------------------------------------------------

    def assert_nothing_leaked(self, *, store_files: list[Path]) -> None:
        """No token the server issued in any run's output, in any file under HOME (the
        token store aside), in the dumps of the children's argv, environment and stdin."""
        secrets = [value for value in self.server.issued if not value.startswith("code-")]
        assert secrets
        for run in self.runs:
            assert_no_secret(run.stdout + run.stderr, secrets, "a run's output")
        for path in sorted(p for p in self.home.parent.rglob("*") if p.is_file()):
            if path not in store_files:
                text = path.read_bytes().decode("utf-8", "replace")
                assert_no_secret(text, secrets, str(path))


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    """Neither a secret as is, nor inside a base64 word (a SASL payload) of `text`."""
    decoded = []
    for word in re.findall(r"[A-Za-z0-9+/=]{24,}", text):
        try:
            decoded.append(base64.b64decode(word + "=" * (-len(word) % 4)).decode("latin-1"))
        except (binascii.Error, ValueError):
            continue
    everything = "\n".join([text, *decoded])
    for secret in secrets:
        assert secret not in everything, f"a token in {where}"


@pytest.fixture
def cron(
    oauth_dovecot: Dovecot, oauth_postfix: Postfix, config_file: Path, isolated_environment: Path
) -> Iterator[Cron]:
    setup = Cron(isolated_environment, config_file, oauth_dovecot, oauth_postfix)
    yield setup
    setup.server.stop()


@pytest.fixture
def keyring_cron(
    oauth_dovecot: Dovecot,
    oauth_postfix: Postfix,
    config_file: Path,
    isolated_environment: Path,
    secret_service: SecretService,
) -> Iterator[Cron]:
    """As `cron`, with token_store = "keyring" in the real gnome-keyring (this test's
    HOME and XDG dirs kept: only the D-Bus address comes from the Secret Service)."""
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": secret_service.bus_address}
    env.pop("PYTHON_KEYRING_BACKEND", None)
    setup = Cron(
        isolated_environment,
        config_file,
        oauth_dovecot,
        oauth_postfix,
        token_store="keyring",
        env=env,
    )
    yield setup
    setup.run("oauth", "logout")  # the Secret Service outlives the test
    setup.server.stop()


# -- 1. months of cron ----------------------------------------------------------------------


def test_months_of_cron_log_in_once_then_every_run_refreshes_rotates_sends_and_fetches(
    cron: Cron,
) -> None:
    cron.server.reported_lifetime = DUE_AT_ONCE
    cron.login()
    assert cron.token_requests() == 1  # the authorization code
    seen = [cron.refresh_token()]
    for cycle in range(6):
        subjects = [f"cron cycle {n}" for n in range(cycle + 1)]
        sent = cron.send(subjects[-1])
        assert sent.code == 0, sent.stderr
        assert_refreshed_once_and_rotated(cron, seen)
        cron.postfix.wait_for_delivery(cron.mailbox.user, cycle + 1)
        assert cron.delivered_subjects() == subjects
        fetched = cron.run("fetch")
        assert fetched.code == 0, fetched.stderr
        assert_refreshed_once_and_rotated(cron, seen)
        assert cron.local_subjects() == subjects  # exactly the new one, none twice
    assert cron.server.requests["/authorize"] == 1  # never an interactive login again
    cron.assert_nothing_leaked(store_files=cron.token_files())


def test_cron_with_the_tokens_in_the_real_keyring(keyring_cron: Cron) -> None:
    cron = keyring_cron
    cron.server.reported_lifetime = DUE_AT_ONCE
    cron.login()
    seen = [cron.refresh_token()]
    assert seen[0] in cron.server.issued
    for cycle in range(2):
        subjects = [f"keyring cycle {n}" for n in range(cycle + 1)]
        sent = cron.send(subjects[-1])
        assert sent.code == 0, sent.stderr
        assert_refreshed_once_and_rotated(cron, seen)
        cron.postfix.wait_for_delivery(cron.mailbox.user, cycle + 1)
        fetched = cron.run("fetch")
        assert fetched.code == 0, fetched.stderr
        assert_refreshed_once_and_rotated(cron, seen)
        assert cron.local_subjects() == subjects
    cached = cron.stored("cache")
    assert cached is not None and cached["access_token"] in cron.server.issued
    assert cron.server.requests["/authorize"] == 1
    assert not any(path.exists() for path in cron.token_files())  # the keyring only
    cron.assert_nothing_leaked(store_files=[])


def test_two_cron_jobs_at_once_refresh_one_after_the_other(cron: Cron) -> None:
    """send and fetch start together, both with a token due: the test holds the account's
    refresh lock until both wait on it (seen in /proc/locks), then lets go. The second
    re-reads the store under the lock and refreshes with the rotated refresh token, not
    the one the first has just used up (which would be invalid_grant: 77, tokens gone)."""
    cron.server.reported_lifetime = DUE_AT_ONCE
    cron.login()
    lock = cron.token_files()[0].with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        jobs = [
            cron.start("send", "--to", cron.mailbox.address, "--subject", "s", "--body", "b"),
            cron.start("fetch"),
        ]
        wait_for_lock_waiters(os.fstat(fd).st_ino, 2)
    finally:
        os.close(fd)  # releases the lock
    for job in jobs:
        done = cron.finish(job)
        assert done.code == 0, done.stderr
    assert cron.token_requests() == 3  # the code, then one refresh per job
    assert cron.refresh_token() in cron.server.issued
    cron.assert_nothing_leaked(store_files=cron.token_files())


def wait_for_lock_waiters(inode: int, count: int) -> None:
    """Until `count` processes wait for a lock on this inode (a bound, not a verdict)."""
    deadline = time.monotonic() + 30
    while True:
        lines = Path("/proc/locks").read_text().splitlines()
        waiting = [line for line in lines if "->" in line and f":{inode} " in line]
        if len(waiting) >= count:
            return
        assert time.monotonic() < deadline, f"{len(waiting)} of {count} waiting: {lines}"
        time.sleep(0.01)


# -- 3. a token the client thinks valid, refused by the server -----------------------------


def test_a_refused_token_is_refreshed_once_and_the_run_retried(cron: Cron) -> None:
    cron.login()  # expires_in an hour: the cached token is fresh for mailcli
    seen = [cron.refresh_token()]
    cron.forge_cached_access_token()
    sent = cron.send("after a refused token")
    assert sent.code == 0, sent.stderr
    assert_refreshed_once_and_rotated(cron, seen)
    assert sent.stderr.count("> AUTH ") == 2  # refused, then the renewed token accepted
    cron.postfix.wait_for_delivery(cron.mailbox.user, 1)
    cron.forge_cached_access_token()
    fetched = cron.run("fetch")
    assert fetched.code == 0, fetched.stderr
    assert_refreshed_once_and_rotated(cron, seen)
    assert fetched.stderr.count("> AUTH ") == 2
    assert cron.local_subjects() == ["after a refused token"]
    assert cron.server.requests["/authorize"] == 1
    cron.assert_nothing_leaked(store_files=cron.token_files())


# -- 4. a revoked refresh token; the token endpoint down for cron's MAILTO -----------------


def test_a_revoked_refresh_token_is_77_with_the_hint_and_forgets_the_tokens(cron: Cron) -> None:
    cron.server.reported_lifetime = DUE_AT_ONCE
    cron.login()
    cron.server.revoke_refresh_tokens()  # e.g. the user revoked the app's access
    refused = cron.send("never sent")
    assert refused.code == 77, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("mailcli: ")]
    assert any("`mailcli oauth login -a work`" in line for line in errors), refused.stderr
    assert cron.stored("record") is None and cron.stored("cache") is None
    assert refused.stdout == "" and cron.postfix.messages(cron.mailbox.user) == []
    cron.assert_nothing_leaked(store_files=cron.token_files())


MAILTO = (
    b"From: cron <cron@example.test>\nSubject: from cron's MAILTO\n"
    b"Message-ID: <mailto-1@example.test>\n\nthe job's output\n"
)


def test_sendmail_with_the_token_endpoint_down_queues_then_queue_run_delivers_once(
    cron: Cron,
) -> None:
    cron.server.reported_lifetime = DUE_AT_ONCE
    cron.login()
    cron.server.stop()  # unreachable: connection refused
    queued = cron.run("sendmail", cron.mailbox.address, input=MAILTO)
    assert queued.code == 0, queued.stderr  # durably queued is sendmail's success
    assert "queued: " in queued.stderr
    spool = cron.home / ".local" / "state" / "mailcli" / "queue"
    assert [p for p in spool.rglob("*") if p.is_file() and b"the job's output" in p.read_bytes()]
    assert cron.refresh_token() in cron.server.issued  # 75 keeps the tokens
    cron.assert_nothing_leaked(store_files=cron.token_files())  # the spool included

    cron.server.resume()
    ran = cron.run("queue", "run", "--json")
    assert ran.code == 0, ran.stderr
    assert [o["status"] for o in json.loads(ran.stdout)["outcomes"]] == ["delivered"]
    again = cron.run("queue", "run", "--json")
    assert again.code == 0 and json.loads(again.stdout)["outcomes"] == []
    cron.postfix.wait_for_delivery(cron.mailbox.user, 1)
    assert cron.delivered_subjects() == ["from cron's MAILTO"]
    assert cron.token_requests() == 2  # the login, the queue run's refresh (the 75: refused)
    assert cron.server.requests["/authorize"] == 1
    cron.assert_nothing_leaked(store_files=cron.token_files())


# -- 5. no token in a child's argv or environment --------------------------------------------


def test_no_token_reaches_the_mda_or_the_client_secret_command(cron: Cron) -> None:
    """The client_secret_command (run for every refresh) and the MDA of a fetch dump
    their argv, environment and stdin: no token there, and no MAILCLI_PASSWORD either
    (set in mailcli's environment for the purpose)."""
    cron.env["MAILCLI_PASSWORD"] = "not-for-children"
    cron.server.reported_lifetime = DUE_AT_ONCE
    cron.login()
    assert cron.send("for the MDA").code == 0
    cron.postfix.wait_for_delivery(cron.mailbox.user, 1)
    fetched = cron.run("fetch", "--to", f"mda:{cron.dump_command} mda")
    assert fetched.code == 0, fetched.stderr
    dumps = [json.loads(path.read_text()) for path in cron.dumps.iterdir()]
    kinds = sorted(dump["argv"][1] for dump in dumps)
    assert kinds == ["mda", "secret", "secret", "secret"]  # login, send's and fetch's refresh
    assert "Subject: for the MDA" in next(d["stdin"] for d in dumps if d["argv"][1] == "mda")
    secrets = [value for value in cron.server.issued if not value.startswith("code-")]
    for dump in dumps:
        assert "MAILCLI_PASSWORD" not in dump["env"]
        assert "not-for-children" not in json.dumps(dump)
        assert_no_secret(json.dumps(dump), secrets, f"{dump['argv'][1]}'s argv or environment")
    cron.assert_nothing_leaked(store_files=cron.token_files())


def assert_refreshed_once_and_rotated(cron: Cron, seen: list[str | None]) -> None:
    """The run just made refreshed exactly once; its rotated refresh token is stored and
    the one before it is refused by the server from now on."""
    assert cron.token_requests() == len(seen) + 1  # the code, then one per run
    rotated = cron.refresh_token()
    assert rotated is not None and rotated not in seen
    previous = seen[-1]
    assert previous is not None and cron.refused_at_endpoint(previous)
    seen.append(rotated)


# -- account show: never the client secret --------------------------------------------------


def test_account_show_and_list_never_print_the_client_secret(config_file: Path) -> None:
    config_file.write_text(
        '[accounts.work]\nuser = "alice"\n[accounts.work.oauth2]\nprovider = "google"\n'
        'client_id = "the-client-id"\nclient_secret = "GOCSPX-the-secret-value"\n'
        'scopes = ["https://mail.google.com/"]\n'
    )
    show = run_cli(["account", "show", "work"])
    document = json.loads(run_cli(["account", "show", "work", "--json"]).stdout)
    listed = run_cli(["account", "list", "--json"])
    for done in (show, listed):
        assert done.code == 0, done.stderr
        assert "GOCSPX" not in done.stdout + done.stderr
    assert document["oauth2"]["client_secret"] == "(set)"
    assert document["oauth2"]["client_id"] == "the-client-id"
    assert document["oauth2"]["scopes"] == ["https://mail.google.com/"]
    assert "oauth2.client_secret\t(set)" in show.stdout.splitlines()
    assert "oauth2.client_id\tthe-client-id" in show.stdout.splitlines()
    assert json.loads(listed.stdout)["accounts"][0]["oauth2"]["client_secret"] == "(set)"
