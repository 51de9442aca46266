"""Error-point enumeration of the sendmail spool (enqueue, `queue run`, the move to
`failed/`) and of `account add`/`remove` (see tests/errorpoints.py): every write, sync,
rename, link, unlink, create, mkdir and close on a file mailcli writes fails once with
ENOSPC or EIO; the run's status is documented, no temporary file is left, and with the
disk back a rerun sends each message once (plus at most one if the failed call was the
removal of an entry the server had taken), the config is the old or the new one, whole."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import errorpoints as ep
from tests import test_crashpoints_spool as crash
from tests import test_oauth_cli as oauth
from tests.servers.authserver import AuthServer
from tests.servers.ports import free_port
from tests.servers.smtpd import AioSmtpd

Factory = Callable[..., AioSmtpd]


def queued_ids(home: Path) -> set[str]:
    """Entries whole in the queue (their JSON parses and their message is there)."""
    whole = set()
    for path in crash.queue_dir(home).glob("*.json"):
        try:
            json.loads(path.read_text())
        except ValueError:
            continue
        if path.with_suffix(".eml").exists():
            whole.add(path.stem)
    return whole


SPOOL_INVARIANTS = [
    "the failed run exits 0, 73, 74 or 75 with an error line (never 70, no traceback)",
    "no temporary file left (.part in the queue, a lock's temporary)",
    "sendmail's exit 0 means an entry whole in the queue; a queued entry is sent once",
    "with the disk back, queue run sends each message once (plus one when the failed "
    "call was the removal of an entry the server had taken); the queue ends empty, "
    "failed/ holds whole entries",
]


def enqueue_test(tmp_path: Path, factory: Factory, budget: int | None) -> None:
    closed = free_port()
    server = factory()

    def home(name: str) -> Path:
        path = tmp_path / name
        crash.write_config(path, closed)
        return path

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        where = home("count")
        counted, points = cp.count(
            crash.SENDMAIL,
            cp.base_env(where),
            tmp_path / "c.log",
            input=crash.outgoing("count"),
            syscalls=ep.ERROR_SYSCALLS,
        )
        assert counted.code in (0, 75), counted.stderr  # queued (75 before sendmail said 0)
        return where, points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        root = home(f"p{index}")
        env = cp.base_env(root)
        subject = f"e{index}"
        first, problems = ep.fail_at(
            where, crash.SENDMAIL, env, tmp_path / f"p{index}.log", input=crash.outgoing(subject)
        )
        left = ep.leftovers(root, where=where)
        problems += left
        entries = queued_ids(root)
        if first.code == 0 and not entries:
            problems.append("sendmail exited 0 and the message is not in the queue")
        crash.write_config(root, server.port)
        mark = len(server.received)
        final = cp.run(crash.QUEUE_RUN, env)  # a half entry is quarantined and reported
        problems += cp.exit_problem("queue run", final, sorted(cp.DOCUMENTED_EXITS))
        sent = crash.subjects(server, mark)[subject]
        if sent != len(entries) or sent > 1:
            problems.append(f"{len(entries)} entries queued, sent {sent} times")
        problems += [] if left else ep.leftovers(root)
        return problems + crash.spool_problems(root, failed=None)

    ep.enumerate_errors("sendmail enqueue", count, case, budget, SPOOL_INVARIANTS, tmp_path)


def queue_run_test(tmp_path: Path, factory: Factory, budget: int | None, *, refuse: bool) -> None:
    """Each case has a server of its own: every case sends the same five messages."""
    starting = threading.Lock()

    def server_for(home: Path) -> AioSmtpd:
        with starting:
            server = factory()
        if refuse:
            server.data_reply = "554 5.7.1 refused for the error test"
        crash.write_config(home, server.port)
        return server

    template = crash.queue_template(tmp_path)
    allowed = sorted(cp.DOCUMENTED_EXITS)

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        where = tmp_path / "count"
        shutil.copytree(template, where)
        server_for(where)
        counted, points = cp.count(
            crash.QUEUE_RUN, cp.base_env(where), tmp_path / "c.log", syscalls=ep.ERROR_SYSCALLS
        )
        assert not cp.exit_problem("queue run", counted, allowed), counted.stderr
        return where, points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        root = tmp_path / f"p{index}"
        shutil.copytree(template, root)
        server = server_for(root)
        env = cp.base_env(root)
        _, problems = ep.fail_at(where, crash.QUEUE_RUN, env, tmp_path / f"p{index}.log")
        left = ep.leftovers(root, where=where)
        final = cp.run(crash.QUEUE_RUN, env)
        problems += left + cp.exit_problem("rerun", final, allowed)
        sent = crash.subjects(server, 0)
        if not refuse and set(sent) != {f"q{n}" for n in range(crash.QUEUED)}:
            problems.append(f"lost: sent only {sorted(sent)}")
        # The one unavoidable resend: the server took it, its removal is what failed.
        most = 0 if refuse else crash.QUEUED + 1
        if sum(sent.values()) > most or max(sent.values(), default=0) > 2:
            problems.append(f"sent {dict(sent)} for {crash.QUEUED} entries")
        problems += [] if left else ep.leftovers(root)
        return problems + crash.spool_problems(root, failed=crash.QUEUED if refuse else 0)

    name = "queue run (to failed/)" if refuse else "queue run"
    ep.enumerate_errors(name, count, case, budget, SPOOL_INVARIANTS, tmp_path)


CONFIG_INVARIANTS = [
    "the failed run exits 0, 73 or 74 with an error line (never 70, no traceback)",
    "no temporary file left; the config is the old one or the new one, whole, and parses",
    "with the disk back, a rerun ends with the new one",
]


def account_test(tmp_path: Path, budget: int | None, *, add: bool) -> None:
    args = crash.ADD if add else ["account", "remove", "new"]

    def home(name: str) -> Path:
        where = tmp_path / name
        config = where / ".config" / "mailcli" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(crash.CONFIG_HEAD)
        if not add:
            assert cp.run(crash.ADD, cp.base_env(where)).code == 0
        return config

    before = home("before").read_bytes()
    after = tmp_path / "after"

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        config = home("count")
        counted, points = cp.count(
            args, cp.base_env(config.parents[2]), tmp_path / "c.log", syscalls=ep.ERROR_SYSCALLS
        )
        assert counted.code == 0, counted.stderr
        after.write_bytes(config.read_bytes())
        return config.parents[2], points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        config = home(f"p{index}")
        root = config.parents[2]
        env = cp.base_env(root)
        _, problems = ep.fail_at(where, args, env, tmp_path / f"p{index}.log")
        problems += ep.leftovers(root, where=where)
        text = config.read_bytes()
        if text not in (before, after.read_bytes()):
            problems.append(f"config is neither the old nor the new one: {text[-120:]!r}")
        rerun = cp.run(args, env)  # may say "exists"/"no such account": documented
        problems += cp.exit_problem("rerun", rerun, sorted(cp.DOCUMENTED_EXITS))
        if config.read_bytes() != after.read_bytes():
            problems.append("after a rerun the config is not the new one")
        return problems

    name = "account add" if add else "account remove"
    ep.enumerate_errors(name, count, case, budget, CONFIG_INVARIANTS, tmp_path)


def test_sendmail_enqueue_survives_an_error_at_every_class_boundary(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_test(tmp_path, aiosmtpd_factory, cp.budget())


QUEUE_DEFECT = ep.defect(
    "queue run: ENOSPC/EIO at the marker rename, the unlinks, the queue or failed/ "
    "folder fsync, the JSON rewrite, the link into failed/ and the lock's close is 70"
)


@QUEUE_DEFECT
@pytest.mark.parametrize("refuse", [False, True], ids=["delivered", "refused"])
def test_queue_run_survives_an_error_at_every_class_boundary(
    tmp_path: Path, aiosmtpd_factory: Factory, refuse: bool
) -> None:
    queue_run_test(tmp_path, aiosmtpd_factory, cp.budget(), refuse=refuse)


@pytest.mark.parametrize("add", [True, False], ids=["add", "remove"])
def test_account_config_survives_an_error_at_every_class_boundary(
    tmp_path: Path, add: bool
) -> None:
    account_test(tmp_path, cp.budget(), add=add)


@pytest.mark.soak
def test_sendmail_enqueue_survives_every_error_at_every_point(
    tmp_path: Path, aiosmtpd_factory: Factory
) -> None:
    enqueue_test(tmp_path, aiosmtpd_factory, None)


@pytest.mark.soak
@pytest.mark.parametrize("refuse", [False, True], ids=["delivered", "refused"])
def test_queue_run_survives_every_error_at_every_point(
    tmp_path: Path, aiosmtpd_factory: Factory, refuse: bool
) -> None:
    queue_run_test(tmp_path, aiosmtpd_factory, None, refuse=refuse)


@pytest.mark.soak
@pytest.mark.parametrize("add", [True, False], ids=["add", "remove"])
def test_account_config_survives_every_error_at_every_point(tmp_path: Path, add: bool) -> None:
    account_test(tmp_path, None, add=add)


OAUTH_INVARIANTS = [
    "the failed run exits 0, 73, 74 or 75 with an error line (never 70, no traceback)",
    "no temporary file left; the token record and cache parse (the old or the new, whole)",
    "with the disk back, `oauth token` refreshes and prints a token the server issued",
]


def oauth_test(tmp_path: Path, server: AuthServer, budget: int | None) -> None:
    """`oauth token` with an expired access token: the refresh writes the token record
    and the access-token cache (files store). The server does not rotate here, so one
    login serves every case; a rotated refresh token that cannot be stored is lost with
    the old one by nature (the server already forgot it): then the rerun is 77."""
    server.rotation = False
    server.device_sequence = ()
    server.device_interval = 1
    template = tmp_path / "template"
    config = template / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True)
    oauth.write_config(config, server)
    login = cp.run(["oauth", "login", "--device"], cp.base_env(template))
    assert login.code == 0, login.stderr

    def home(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(template, root)
        oauth.expire_cached_token(root)
        return root

    def count() -> tuple[Path, list[cp.CrashPoint]]:
        root = home("count")
        counted, points = cp.count(
            ["oauth", "token"], cp.base_env(root), tmp_path / "c.log", syscalls=ep.ERROR_SYSCALLS
        )
        assert counted.code == 0, counted.stderr
        return root, points

    def case(index: int, where: ep.ErrorPoint) -> list[str]:
        root = home(f"p{index}")
        env = cp.base_env(root)
        _, problems = ep.fail_at(where, ["oauth", "token"], env, tmp_path / f"p{index}.log")
        problems += ep.leftovers(root, where=where)
        for path in oauth.token_files(root):
            try:
                json.loads(path.read_text()) if path.exists() else None
            except ValueError:
                problems.append(f"{path.name} in {path.parent} is not whole")
        rerun = cp.run(["oauth", "token"], env)
        problems += cp.exit_problem("rerun", rerun)
        if rerun.code == 0 and rerun.stdout.decode().strip() not in server.issued:
            problems.append("the rerun printed no token the server issued")
        return problems

    ep.enumerate_errors("oauth token (refresh)", count, case, budget, OAUTH_INVARIANTS, tmp_path)


@ep.defect("EIO from close() of the refresh lock (FileLock.__exit__) is 70")
def test_oauth_token_store_survives_an_error_at_every_class_boundary(
    tmp_path: Path, auth_server: AuthServer
) -> None:
    oauth_test(tmp_path, auth_server, cp.budget())


@pytest.mark.soak
def test_oauth_token_store_survives_every_error_at_every_point(
    tmp_path: Path, auth_server: AuthServer
) -> None:
    oauth_test(tmp_path, auth_server, None)
