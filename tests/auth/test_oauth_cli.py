"""`mailcli oauth login|status|token|logout`, the oauth2 config table, and `password
where` for an OAuth2 account, against the test authorization server
(tests/servers/authserver.py) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    MAILCLI,
    Result,
    expire_cached_token,
    imported_by,
    oauth_token_files,
    run_cli,
    write_config,
)
from tests.servers.authserver import AuthServer
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import make_mailbox
from tests.servers.keyring_service import SecretService
from tests.servers.oauthlogin import browser_login
from tests.servers.postfix import Postfix


@pytest.fixture
def configured(config_file: Path, auth_server: AuthServer) -> AuthServer:
    write_config(config_file, auth_server)
    return auth_server


def no_token_in(result: Result, server: AuthServer) -> None:
    for issued in server.issued:
        assert issued not in result.stdout + result.stderr


# -- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"clientid": "x"}, "accounts.work.oauth2.clientid: unknown key (known: "),
        ({"provider": "yahoo"}, "accounts.work.oauth2.provider: must be one of google, "),
        ({"token_url": None}, 'accounts.work.oauth2.token_url: required with provider = "custom"'),
        ({"token_store": "disk"}, "accounts.work.oauth2.token_store: must be one of keyring, file"),
        (
            {"client_secret": "s", "client_secret_command": "echo s"},
            "accounts.work.oauth2.client_secret: give client_secret or client_secret_command",
        ),
        ({"scopes": "mail"}, "accounts.work.oauth2.scopes: must be a list of strings"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key_78(
    config_file: Path, auth_server: AuthServer, settings: dict[str, Any], message: str
) -> None:
    write_config(config_file, auth_server, **settings)
    done = run_cli(["oauth", "status"])
    assert done.code == 78
    assert done.stderr.startswith(f"mailcli: error: {config_file}: {message}")
    assert done.stderr.count("\n") == 1 and done.stdout == ""


def test_an_account_without_an_oauth2_table_is_78(config_file: Path) -> None:
    config_file.write_text('[accounts.work]\nuser = "alice"\n')
    done = run_cli(["oauth", "token"])
    assert done.code == 78
    assert "accounts.work.oauth2: missing" in done.stderr and done.stdout == ""


def test_login_without_a_client_id_prints_how_to_register_and_exits_78(
    config_file: Path, auth_server: AuthServer
) -> None:
    write_config(config_file, auth_server, provider="google", client_id=None)
    done = run_cli(["oauth", "login"])
    assert done.code == 78
    assert "Desktop app" in done.stderr  # Google's registration steps
    assert done.stderr.splitlines()[-1].startswith(
        f"mailcli: error: {config_file}: accounts.work.oauth2.client_id: missing"
    )
    assert auth_server.requests == {}


def test_account_add_and_remove_keep_the_oauth2_table_whole(
    config_file: Path, auth_server: AuthServer
) -> None:
    from mailcli.config import Account, OAuthSettings, add_account, load_config, remove_account

    write_config(config_file, auth_server, client_secret_command="pass show oauth")
    before = load_config(config_file).accounts["work"].oauth2
    assert before is not None and before.scopes == ("mail",) and before.token_store == "file"
    settings = OAuthSettings(provider="microsoft", client_id="cid", tenant="organizations")
    add_account(load_config(config_file), Account("ms", oauth2=settings), make_default=False)
    config = load_config(config_file)
    assert config.accounts["ms"].oauth2 == settings
    assert config.accounts["work"].oauth2 == before
    remove_account(config, "work")
    assert "work" not in config_file.read_text() and "oauth" in config_file.read_text()
    assert load_config(config_file).accounts["ms"].oauth2 == settings


# -- the commands ---------------------------------------------------------------------------


def test_browser_login_then_status_token_and_logout(
    configured: AuthServer, isolated_environment: Path
) -> None:
    code, out, err = browser_login()
    assert code == 0, err
    assert out == ""  # people's messages on stderr; no token anywhere
    assert "logged in as alice@example.test (account 'work', custom)" in err
    record, cache = oauth_token_files(isolated_environment)
    for path in (record, cache):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    status = run_cli(["oauth", "status", "--json"])
    assert status.code == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["provider"] == "custom" and document["account"] == "work"
    assert document["scopes"] == ["mail"] and document["access_token_valid"] is True
    assert document["stored"] == f"file {record}"
    no_token_in(status, configured)

    token = run_cli(["oauth", "token"])
    assert token.code == 0
    assert token.stdout == json.loads(cache.read_text())["access_token"] + "\n"
    assert configured.requests["/token"] == 1  # the cached token: no refresh

    where = run_cli(["password", "where", "--json"])
    assert where.code == 0, where.stderr
    assert json.loads(where.stdout)["logins"][0]["answer"] == "oauth2"

    logout = run_cli(["oauth", "logout", "--revoke"])
    assert logout.code == 0, logout.stderr
    assert configured.requests["/revoke"] == 1
    assert not record.exists() and not cache.exists()
    assert run_cli(["oauth", "token"]).code == 77


def test_an_expired_token_is_refreshed_and_the_rotated_one_stored(
    configured: AuthServer, isolated_environment: Path
) -> None:
    assert browser_login()[0] == 0
    record, _ = oauth_token_files(isolated_environment)
    first_refresh = json.loads(record.read_text())["refresh_token"]
    expire_cached_token(isolated_environment)
    token = run_cli(["oauth", "token"])
    assert token.code == 0, token.stderr
    assert configured.requests["/token"] == 2
    rotated = json.loads(record.read_text())["refresh_token"]
    assert rotated != first_refresh and rotated in configured.issued
    assert token.stdout.strip() in configured.issued


def test_a_revoked_refresh_token_is_77_with_the_hint_and_clears_the_tokens(
    configured: AuthServer, isolated_environment: Path
) -> None:
    assert browser_login()[0] == 0
    configured.revoke_refresh_tokens()
    expire_cached_token(isolated_environment)
    done = run_cli(["oauth", "token"])
    assert done.code == 77
    assert "mailcli oauth login -a work" in done.stderr and done.stdout == ""
    no_token_in(done, configured)
    assert not any(path.exists() for path in oauth_token_files(isolated_environment))


def test_an_unreachable_token_endpoint_is_75_and_keeps_the_tokens(
    configured: AuthServer, isolated_environment: Path
) -> None:
    assert browser_login()[0] == 0
    expire_cached_token(isolated_environment)
    configured.stop()
    done = run_cli(["oauth", "token"])
    assert done.code == 75, done.stderr
    assert done.stdout == "" and done.stderr.count("\n") <= 2
    assert all(path.exists() for path in oauth_token_files(isolated_environment))


def test_not_logged_in_is_77(configured: AuthServer) -> None:
    done = run_cli(["oauth", "token"])
    assert done.code == 77
    assert "not logged in" in done.stderr and "`mailcli oauth login -a work`" in done.stderr
    status = json.loads(run_cli(["oauth", "status", "--json"]).stdout)
    assert status["logged_in"] is False and status["access_token_expires"] is None


def test_device_login(configured: AuthServer, isolated_environment: Path) -> None:
    configured.device_sequence = ()
    configured.device_interval = 1
    done = run_cli(["oauth", "login", "--device"])
    assert done.code == 0, done.stderr
    assert "enter the code" in done.stderr and "logged in as alice@example.test" in done.stderr
    assert oauth_token_files(isolated_environment)[0].exists()


def test_paste_login(configured: AuthServer, isolated_environment: Path) -> None:
    process = subprocess.Popen(
        [*MAILCLI, "oauth", "login", "--paste"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None and process.stdin is not None
    url = next(line.strip() for line in process.stderr if line.startswith("http://"))
    redirected = _location_of(url)
    _, err = process.communicate(input=redirected + "\n", timeout=60)
    assert process.returncode == 0, err
    assert oauth_token_files(isolated_environment)[0].exists()


def _location_of(url: str) -> str:
    """Where the authorization server sends the browser (not followed: nothing listens)."""

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(Stop)
    try:
        opener.open(url, timeout=30)
    except urllib.error.HTTPError as answer:
        return str(answer.headers["Location"])
    raise AssertionError("no redirect")


def test_login_into_a_real_keyring(
    config_file: Path, auth_server: AuthServer, secret_service: SecretService
) -> None:
    write_config(config_file, auth_server, token_store="keyring")
    env = {**secret_service.subprocess_env(), "MAILCLI_CONFIG": str(config_file)}
    for display in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(display, None)
    code, _, err = browser_login(env, options=())  # no display: the URL is printed
    assert code == 0, err
    assert "keyring (service 'mailcli', user 'oauth:custom:work')" in err
    status = subprocess.run(
        [*MAILCLI, "oauth", "status", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(status.stdout)["access_token_valid"] is True
    token = subprocess.run([*MAILCLI, "oauth", "token"], env=env, capture_output=True, text=True)
    assert token.returncode == 0 and token.stdout.strip() in auth_server.issued
    for home in (secret_service.root / "home", Path(os.environ["HOME"])):
        assert not any(path.exists() for path in oauth_token_files(home))


# -- a client secret given at login ------------------------------------------------------------

SECRET = "GOCSPX-test-client-secret-4f2a9c"


def client_secret_file(home: Path) -> Path:
    return home / ".local" / "state" / "mailcli" / "oauth" / "client" / "work.json"


def files_holding(root: Path, value: str) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and value.encode() in p.read_bytes())


def test_a_client_secret_given_at_login_is_stored_and_refreshes_with_it(
    configured: AuthServer, isolated_environment: Path
) -> None:
    configured.client_secret = SECRET  # /token and /revoke refuse a request without it
    code, out, err = browser_login(client_secret=SECRET)
    assert code == 0, err
    secret_file = client_secret_file(isolated_environment)
    assert files_holding(isolated_environment, SECRET) == [secret_file]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    status = run_cli(["oauth", "status", "--json"])
    assert json.loads(status.stdout)["client_secret"] == "stored"
    expire_cached_token(isolated_environment)
    token = run_cli(["oauth", "token"])
    assert token.code == 0, token.stderr
    assert configured.requests["/token"] == 2
    aside = secret_file.rename(secret_file.with_name("aside"))  # without it: refused
    expire_cached_token(isolated_environment)
    refused = run_cli(["oauth", "token"])
    assert refused.code == 77 and "invalid_client" in refused.stderr
    aside.rename(secret_file)
    logout = run_cli(["oauth", "logout", "--revoke"])
    assert logout.code == 0, logout.stderr
    assert configured.requests["/revoke"] == 1 and not secret_file.exists()
    after = run_cli(["oauth", "status", "--json"])
    assert json.loads(after.stdout)["client_secret"] == "none"
    for run in (status, token, refused, logout, after):
        assert SECRET not in run.stdout + run.stderr
    assert SECRET not in out + err and files_holding(isolated_environment, SECRET) == []


def test_a_client_secret_given_at_login_goes_into_the_keyring(
    config_file: Path, auth_server: AuthServer, secret_service: SecretService
) -> None:
    auth_server.client_secret = SECRET
    auth_server.reported_lifetime = 1e-9  # every later run refreshes
    write_config(config_file, auth_server, token_store="keyring")
    env = {**secret_service.subprocess_env(), "MAILCLI_CONFIG": str(config_file)}
    code, out, err = browser_login(env, client_secret=SECRET)
    assert code == 0, err
    runs = [
        subprocess.run([*MAILCLI, "oauth", *args], env=env, capture_output=True, text=True)
        for args in (["status", "--json"], ["token"], ["logout"], ["status", "--json"])
    ]
    assert json.loads(runs[0].stdout)["client_secret"] == "stored"
    assert runs[1].returncode == 0, runs[1].stderr
    assert auth_server.requests["/token"] == 2
    assert json.loads(runs[3].stdout)["client_secret"] == "none"
    assert SECRET not in out + err + "".join(run.stdout + run.stderr for run in runs)
    for home in (secret_service.root / "home", Path(os.environ["HOME"])):
        assert files_holding(home, SECRET) == []


def test_client_secret_and_paste_both_reading_a_pipe_is_64(configured: AuthServer) -> None:
    done = run_cli(["oauth", "login", "--paste", "--client-secret"], input=SECRET + "\n")
    assert done.code == 64, done.stderr
    assert "--paste" in done.stderr and done.stderr.count("\n") == 1 and done.stdout == ""
    assert configured.requests == {}


def test_an_empty_client_secret_is_64(configured: AuthServer) -> None:
    done = run_cli(["oauth", "login", "--client-secret"], input="\n")
    assert done.code == 64 and done.stderr.count("\n") == 1
    assert configured.requests == {}


@pytest.mark.parametrize("setting", ["client_secret", "client_secret_command"])
def test_client_secret_at_login_when_the_config_has_one_is_78_naming_it(
    config_file: Path, auth_server: AuthServer, setting: str
) -> None:
    write_config(config_file, auth_server, **{setting: "echo configured"})
    done = run_cli(["oauth", "login", "--client-secret"], input=SECRET + "\n")
    assert done.code == 78
    assert done.stderr.startswith(f"mailcli: error: {config_file}: accounts.work.oauth2.{setting}")
    assert done.stderr.count("\n") == 1 and auth_server.requests == {}


# -- against Dovecot and Postfix -------------------------------------------------------------


def test_log_in_once_then_stat_and_send_as_cron_would_refreshing_silently(
    oauth_dovecot: Dovecot, oauth_postfix: Postfix, config_file: Path, isolated_environment: Path
) -> None:
    mailbox = make_mailbox(oauth_dovecot, "oauthcli")
    ca = oauth_dovecot.certs.ca_pem
    servers = (
        f'[accounts.work.pop3]\nhost = "127.0.0.1"\nport = {oauth_dovecot.pop3_port}\n'
        f'cafile = "{ca}"\n[accounts.work.smtp]\nhost = "127.0.0.1"\n'
        f'port = {oauth_postfix.submission_port}\ncafile = "{ca}"\n'
    )
    server = AuthServer(oauth_dovecot.oauth2_key, email=mailbox.user)
    try:
        write_config(config_file, server, user=mailbox.user, servers=servers)
        assert browser_login()[0] == 0
        stat_run = run_cli(["stat", "--trace"])
        assert stat_run.code == 0, stat_run.stderr
        expire_cached_token(isolated_environment)  # an hour later: refreshed, not asked
        message = ["--from", mailbox.address, "--to", mailbox.address, "--body", "x", "--trace"]
        message += ["--quit-after", "auth"]  # the login is what is under test
        sent = run_cli(["send", *message])
        assert sent.code == 0, sent.stderr
        assert server.requests["/token"] == 2
        for run in (stat_run, sent):
            no_token_in(run, server)
        server.revoke_refresh_tokens()
        expire_cached_token(isolated_environment)
        refused = run_cli(["stat"])
        assert refused.code == 77 and "mailcli oauth login -a work" in refused.stderr
    finally:
        server.stop()


# -- start-up ---------------------------------------------------------------------------------

# Not json: the probe itself imports it to report.
OAUTH_MODULES = ["mailcli.auth.oauth", "urllib.request", "http.client", "http.server"]


def test_a_password_account_never_imports_the_oauth_code(config_file: Path) -> None:
    """stat builds its session (asking for the credential) and finds nothing listening
    (69): the OAuth2 code (and urllib.request, http) stays out of a password account's run."""
    config_file.write_text(
        '[accounts.work]\nuser = "alice"\n[accounts.work.pop3]\nhost = "127.0.0.1"\nport = 9\n'
    )
    assert imported_by(["stat"], OAUTH_MODULES) == []
    assert imported_by(["oauth", "--help"], ["mailcli.auth.oauth", "urllib.request"]) == []


def test_the_credential_is_a_bearer_source_only_for_an_oauth2_account(
    configured: AuthServer, config_file: Path
) -> None:
    from mailcli.auth.oauth.access import OAuthBearer
    from mailcli.cli.context import AppContext
    from mailcli.endpoint import ConnectionOptions

    app = AppContext()
    endpoint = app.endpoint("smtp", ConnectionOptions())
    assert isinstance(app.credential(endpoint), OAuthBearer)
    config_file.write_text('[accounts.work]\nuser = "alice"\n[accounts.work.smtp]\nhost = "h"\n')
    app = AppContext()
    assert not isinstance(app.credential(app.endpoint("smtp", ConnectionOptions())), OAuthBearer)
