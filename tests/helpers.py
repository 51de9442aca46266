"""Helpers shared by the tests: run the CLI in-process or as a process, test keyrings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keyring.backend
import keyring.errors
from click.testing import CliRunner

from mailcli.cli.main import _run
from tests.servers.accounts import Account

if TYPE_CHECKING:
    from mailcli.check.findings import AuditTarget, Finding
    from mailcli.check.limiter import ConnectionLimiter
    from mailcli.endpoint import Endpoint, MailProtocol, SecurityMode
    from tests.servers.authserver import AuthServer
    from tests.servers.fixtures import Mailbox

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


@dataclass(frozen=True)
class Mailcli:
    """Runs mailcli commands as one account: ``mailcli("fetch", "--delete")`` is
    ``mailcli fetch --delete`` followed by the account's connection options, with its
    password in the environment. ``process``: a real ``python -m mailcli`` (pipes, the
    whole environment) instead of ``run_cli`` in this process; the ``mailcli`` fixture
    chooses with ``@pytest.mark.mailcli(process=True)``."""

    account: Account
    process: bool = False

    def __call__(
        self, *command: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        args = [*command, *self.account.args()]
        extra = {**self.account.env(), **(env or {})}
        if not self.process:
            return run_cli(args, env=extra, input=input)
        done = run_process(
            args,
            env={**os.environ, **extra},
            input=None if input is None else input.encode(),
        )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())

    def json(self, *command: str) -> Any:
        """``COMMAND --json``, which must succeed; its parsed output."""
        result = self(*command, "--json")
        assert result.code == 0, result.stderr
        return json.loads(result.stdout)

    def server_count(self) -> int:
        """How many messages the POP3 server holds now (``stat``)."""
        return int(self.json("stat")["messages"])

    def as_account(self, account: Account) -> Mailcli:
        """The same runner for another account (another user, port or TLS mode)."""
        return replace(self, account=account)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend in a dict, for tests that do not need the real Secret Service."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's base is unannotated
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


@dataclass
class Measured:
    code: int
    stdout: bytes
    stderr: bytes
    seconds: float
    peak_kib: int


_PROBE = """\
import runpy, sys
sys.argv = ['mailcli', *sys.argv[1:]]
code = 0
try:
    runpy.run_module('mailcli', run_name='__main__')
except SystemExit as exit:
    code = exit.code
finally:
    peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
    open(__peak__, 'w').write(peak)
sys.exit(code)
"""


def run_measured(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Measured:
    """Run mailcli as a process and measure its wall time and peak RSS (VmHWM: unlike
    getrusage, not inherited from the forking parent)."""
    import tempfile
    import time

    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak_file:
        probe = _PROBE.replace("__peak__", repr(peak_file.name))
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            timeout=timeout,
            env=dict(env if env is not None else os.environ),
            check=False,
        )
        elapsed = time.monotonic() - started
        peak = int(peak_file.read() or 0)
    return Measured(done.returncode, done.stdout, done.stderr, elapsed, peak)


def imported_by(argv: list[str], watched: list[str]) -> list[str]:
    """Which of `watched` a run of `mailcli ARGV` (in a fresh interpreter) imports."""
    probe = (
        "import runpy, sys, json\n"
        f"sys.argv = ['mailcli', *{argv!r}]\n"
        "try:\n    runpy.run_module('mailcli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"sys.stderr.write(json.dumps(sorted(m for m in {watched!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(done.stderr.splitlines()[-1]))


def write_cron_config(home: Path, port: int, *, extra: str = "") -> None:
    """The config of a cron host's one account, `cron`, submitting to 127.0.0.1:PORT in
    clear (no AUTH unless `extra` adds account keys such as a user and password_command)."""
    config = home / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[accounts.cron]\nfrom = "cron@example.test"\ndomain = "example.test"\n{extra}'
        f'[accounts.cron.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
    )


def queue_dir(home: Path) -> Path:
    """The sendmail queue of a private HOME (XDG_STATE_HOME at its default place)."""
    return home / ".local" / "state" / "mailcli" / "queue"


def drop(box: Mailbox, numbers: range, size: int = 0) -> None:
    """Put the numbered test messages NUMBERS (each padded to `size`) into `box`."""
    from tests.servers.accounts import numbered_message

    box.drop(*(numbered_message(number, size=size) for number in numbers))


def message_ids(contents: list[bytes]) -> Counter[str]:
    """How often each Message-ID occurs among the delivered messages `contents`."""
    ids: Counter[str] = Counter()
    for data in contents:
        for line in data.splitlines():
            if line.startswith(b"Message-ID: "):
                ids[line.split(b" ", 1)[1].decode()] += 1
    return ids


def audit_target(
    protocol: MailProtocol,
    port: int,
    security: SecurityMode,
    *,
    cafile: Path | None = None,
    source: str | None = None,
    audit_rcpt: str | None = None,
    limiter: ConnectionLimiter | None = None,
    host: str = "127.0.0.1",
) -> AuditTarget:
    """What `check --audit` gets for a test server on `host` (10 s timeout, 5 s per probe
    read; a connection limiter of its own unless one is given)."""
    from mailcli.check.findings import AuditTarget
    from mailcli.check.limiter import ConnectionLimiter

    return AuditTarget(
        protocol,
        make_endpoint(protocol, port, security=security, cafile=cafile, host=host),
        audit_rcpt=audit_rcpt,
        source_address=source,
        probe_timeout=5.0,
        limiter=limiter or ConnectionLimiter(),
    )


def finding_levels(findings: list[Finding], among: Collection[str] | None = None) -> dict[str, str]:
    """Each finding's level by its id (only the ids `among`, when given)."""
    return {f.id: f.level for f in findings if among is None or f.id in among}


def findings_by_id(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.id: finding for finding in findings}


def assert_one_verdict(
    audits: list[list[Finding]], expected: dict[str, str], software: str
) -> None:
    """Every run of an audit gave the `expected` levels (by id), none was incomplete, and
    each named `software` as the server that answered."""
    for findings in audits:
        assert finding_levels(findings, expected) == expected, findings
        assert not [f for f in findings if f.incomplete or f.id == "audit-incomplete"], findings
        answered = findings_by_id(findings)["software"].summary
        assert answered.startswith(f"server software: {software}"), answered


def only(findings: list[Finding], probe_id: str) -> Finding:
    """The one finding a probe returned, which must have `probe_id`."""
    assert [f.id for f in findings] == [probe_id]
    return findings[0]


def make_endpoint(
    protocol: MailProtocol,
    port: int,
    *,
    security: SecurityMode = "none",
    host: str = "127.0.0.1",
    user: str | None = None,
    auth: str | None = None,
    cafile: str | Path | None = None,
    insecure: bool = False,
    timeout: float = 10.0,
    password_command: str | None = None,
    account: str | None = None,
) -> Endpoint:
    """A resolved endpoint for a test server, by keyword: what the tests do not say is a
    plain connection to 127.0.0.1 without AUTH, a 10 s timeout and no account."""
    from mailcli.endpoint import Endpoint

    return Endpoint(
        protocol=protocol,
        host=host,
        port=port,
        security=security,
        user=user,
        auth=auth,
        cafile=str(cafile) if cafile else None,
        insecure=insecure,
        timeout=timeout,
        password_command=password_command,
        account=account,
    )


SMTP_TABLE = '[accounts.work.smtp]\nhost = "127.0.0.1"\n'


def write_config(
    path: Path,
    server: AuthServer | str,
    *,
    user: str = "alice@example.test",
    servers: str = SMTP_TABLE,
    extra: str = "",
    **oauth2: object,
) -> Path:
    """The config file at `path`: account `work` (`extra` adds account keys) logging in
    with OAuth2 at `server`, the test authorization server or the base URL of another
    (then give its `client_id`). `oauth2` adds or overrides keys of the oauth2 table
    (None leaves a key out); tokens live in files unless `token_store` says otherwise."""
    base = server if isinstance(server, str) else server.url("")
    settings: dict[str, object] = {
        "provider": "custom",
        "client_id": None if isinstance(server, str) else server.client_id,
        "authorize_url": f"{base}/authorize",
        "token_url": f"{base}/token",
        "device_url": f"{base}/device/code",
        "revoke_url": f"{base}/revoke",
        "scopes": ["mail"],
        "token_store": "file",
        **oauth2,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items() if value is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"[accounts.work]\nuser = {json.dumps(user)}\n{extra}{servers}"
        "[accounts.work.oauth2]\n" + "\n".join(lines) + "\n"
    )
    return path


def oauth_token_files(home: Path, account: str = "work") -> tuple[Path, Path]:
    """An account's token record and access-token cache in the files store of `home`."""
    return (
        home / ".local" / "state" / "mailcli" / "oauth" / f"{account}.json",
        home / ".cache" / "mailcli" / "oauth" / f"{account}.json",
    )


def expire_cached_token(home: Path) -> None:
    """Mark account `work`'s cached access token expired, so the next use refreshes it."""
    cache = oauth_token_files(home)[1]
    cache.write_text(json.dumps({**json.loads(cache.read_text()), "expires_at": 0}))


@dataclass(frozen=True)
class TrailLine:
    """One line of mailcli's log (`--log`, the `log` key), parsed: its fields in order."""

    fields: tuple[tuple[str, str], ...]

    def all(self, key: str) -> list[str]:
        return [value for name, value in self.fields if name == key]

    def get(self, key: str) -> str | None:
        values = self.all(key)
        assert len(values) <= 1, f"{key} repeated in {self.fields}"
        return values[0] if values else None

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def recipients(self) -> dict[str, tuple[str, str]]:
        """rcpt fields: address -> (RCPT reply code, enhanced status), `-` for none."""
        found = {}
        for value in self.all("rcpt"):
            address, code, enhanced = value.rsplit(" ", 2)
            found[address] = (code, enhanced)
        return found


_TRAIL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_TRAIL_HEX = {"x": 2, "u": 4, "U": 8}


def parse_trail_line(line: str) -> TrailLine:
    """The trail's grammar (mailcli/trail/line.py), strictly: `key=value` pairs separated
    by one space, `time` first; a value bare (printable ASCII but space, `"`, `\\`, `=`) or
    quoted with the documented escapes. Anything else is a ValueError."""
    fields: list[tuple[str, str]] = []
    position = 0
    while position < len(line):
        if fields:
            if line[position] != " ":
                raise ValueError(f"no space before field at {position}: {line!r}")
            position += 1
        equals = line.index("=", position)
        key = line[position:equals]
        if not key or not all(c.isascii() and (c.isalnum() or c == "_") for c in key):
            raise ValueError(f"bad key {key!r} in {line!r}")
        value, position = _trail_value(line, equals + 1)
        fields.append((key, value))
    if not fields or fields[0][0] != "time":
        raise ValueError(f"a trail line starts with time=: {line!r}")
    return TrailLine(tuple(fields))


def _trail_value(line: str, position: int) -> tuple[str, int]:
    if position < len(line) and line[position] == '"':
        return _trail_quoted(line, position + 1)
    end = position
    while end < len(line) and line[end] != " ":
        if not 0x21 <= ord(line[end]) <= 0x7E or line[end] in '"\\=':
            raise ValueError(f"bad character {line[end]!r} in a bare value: {line!r}")
        end += 1
    if end == position:
        raise ValueError(f"empty bare value at {position}: {line!r}")
    return line[position:end], end


def _trail_quoted(line: str, position: int) -> tuple[str, int]:
    out: list[str] = []
    while True:
        if position >= len(line) or (line[position] == "\\" and position + 1 == len(line)):
            raise ValueError(f"unterminated quoted value: {line!r}")
        character = line[position]
        if character == '"':
            return "".join(out), position + 1
        if not character.isprintable():
            raise ValueError(f"raw {character!r} inside quotes: {line!r}")
        if character != "\\":
            out.append(character)
            position += 1
            continue
        escape = line[position + 1]
        if escape in _TRAIL_ESCAPES:
            out.append(_TRAIL_ESCAPES[escape])
            position += 2
        elif escape in _TRAIL_HEX:
            digits = line[position + 2 : position + 2 + _TRAIL_HEX[escape]]
            out.append(chr(int(digits, 16)))
            position += 2 + _TRAIL_HEX[escape]
        else:
            raise ValueError(f"unknown escape \\{escape} in {line!r}")


def read_trail(path: Path) -> list[TrailLine]:
    """Every line of a log file, each parsed; the file is UTF-8 and ends with a newline."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    return [parse_trail_line(line) for line in data.decode("utf-8").split("\n")[:-1]]


def import_accounts(*args: str) -> Result:
    """`mailcli account import ARGS`, in this process; never a traceback."""
    result = run_cli(["account", "import", *args])
    assert "Traceback" not in result.stderr
    return result


def not_imported(result: Result, directory: Path) -> list[str]:
    """The keys `account import` left out: `FILE:LINE: ACCOUNT: COMMAND: why`, FILE in
    `directory`."""
    prefix = f"mailcli: warning: not imported: {directory}/"
    lines = result.stderr.splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
