"""Error-point enumeration of the files mailcli keeps for the user: the config
(`account add`/`remove`/`import`) and the OAuth2 token store (`oauth token` refreshing an expired
access token: the token record and the access-token cache, `token_store = "file"`); see
tests/errorpoints.py. After ENOSPC or EIO at any write, sync, rename, create, mkdir or
close of them: a documented status, no temporary file left, the file the old one or the
new one, whole, and with the disk back a rerun completes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import crashpoints as cp
from tests import errorpoints as ep
from tests import spoolcases as crash
from tests.helpers import expire_cached_token, oauth_token_files, write_config
from tests.servers.authserver import AuthServer

CONFIG_INVARIANTS = [
    "the failed run exits 0, 73 or 74 with an error line (never 70, no traceback)",
    "no temporary file left; the config is the old one or the new one, whole, and parses",
    "with the disk back, a rerun ends with the new one",
]


def account_test(tmp_path: Path, budget: int | None, operation: str) -> None:
    args = crash.account_args(operation, tmp_path)

    def home(name: str) -> Path:
        return crash.account_home(tmp_path / name, operation)

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
        return problems + crash.config_problems(config, before, after.read_bytes(), args, env)

    ep.enumerate_errors(f"account {operation}", count, case, budget, CONFIG_INVARIANTS, tmp_path)


@pytest.mark.parametrize("operation", crash.ACCOUNT_OPERATIONS)
def test_account_config_survives_an_error_at_every_class_boundary(
    tmp_path: Path, operation: str
) -> None:
    account_test(tmp_path, cp.budget(), operation)


@pytest.mark.soak
@pytest.mark.parametrize("operation", crash.ACCOUNT_OPERATIONS)
def test_account_config_survives_every_error_at_every_point(tmp_path: Path, operation: str) -> None:
    account_test(tmp_path, None, operation)


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
    # the device login needs no revocation endpoint
    write_config(template / ".config" / "mailcli" / "config.toml", server, revoke_url=None)
    login = cp.run(["oauth", "login", "--device"], cp.base_env(template))
    assert login.code == 0, login.stderr

    def home(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(template, root)
        expire_cached_token(root)
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
        for path in oauth_token_files(root):
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


def test_oauth_token_store_survives_an_error_at_every_class_boundary(
    tmp_path: Path, auth_server: AuthServer
) -> None:
    oauth_test(tmp_path, auth_server, cp.budget())


@pytest.mark.soak
def test_oauth_token_store_survives_every_error_at_every_point(
    tmp_path: Path, auth_server: AuthServer
) -> None:
    oauth_test(tmp_path, auth_server, None)
