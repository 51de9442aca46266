"""What a broken or hostile OAuth2 server can put in front of mailcli: a token endpoint's
answer nested past Python's stack, an id_token whose claims are, an absurd or
non-numeric expires_in, and a SASL error challenge (XOAUTH2, OAUTHBEARER) nested past
the stack. Each is one line and its documented status (76 for the endpoint's answer,
77 for a refused token), never a traceback or 70; an absurd lifetime is bounded so the
stored tokens stay readable.

The token endpoint is the test authorization server answering /token with exact bytes
(`token_answer`); the mail servers are scripted (tests/servers/scripted.py)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailcli.auth.credential import BearerSource
from mailcli.auth.oauth import tokens
from mailcli.auth.oauth.tokens import token_set
from mailcli.auth.sasl import OAUTHBEARER, XOAUTH2, error_detail
from mailcli.endpoint import Endpoint, MailProtocol
from mailcli.errors import ExitStatus, MailcliError, ProtocolError
from mailcli.pop3.session import Pop3Session
from mailcli.smtp.session import SmtpSession
from mailcli.transcript import Transcript
from tests.helpers import make_endpoint, run_process, write_config
from tests.servers.authserver import AuthServer
from tests.servers.oauthlogin import browser_login
from tests.servers.saslscripts import pop3_refusing, smtp_refusing
from tests.servers.scripted import Script, ScriptedServer

DEEP = b"[" * 100_000  # json recurses once per level: far past any stack limit
# Deep enough for RecursionError, short enough for one SMTP/POP3 line once in base64.
DEEP_CHALLENGE = base64.b64encode(b'{"status":' + b"[" * 4000).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _answer(**fields: object) -> bytes:
    return json.dumps({"access_token": "tok", "token_type": "Bearer", **fields}).encode()


@pytest.fixture
def logged_in(config_file: Path, auth_server: AuthServer, isolated_environment: Path) -> AuthServer:
    """Logged in at the test server, the cached access token expired: the next
    `mailcli oauth token` refreshes it at /token."""
    write_config(config_file, auth_server)
    code, _, err = browser_login()
    assert code == 0, err
    cache = isolated_environment / ".cache" / "mailcli" / "oauth" / "work.json"
    document = json.loads(cache.read_text())
    document["expires_at"] = 0
    cache.write_text(json.dumps(document))
    return auth_server


def assert_one_line_error(stderr: bytes) -> str:
    text = stderr.decode()
    assert text.startswith("mailcli: error: ") and text.count("\n") == 1, text
    assert "Traceback" not in text
    return text


# -- the token endpoint's answer ---------------------------------------------------------


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize(
    "body", [DEEP, b'{"access_token": "tok", "x": ' + DEEP], ids=["array", "in-a-field"]
)
def test_a_token_answer_nested_past_the_stack_is_76(
    logged_in: AuthServer, status: int, body: bytes
) -> None:
    logged_in.token_answer = (status, body)
    done = run_process(["oauth", "token"])
    assert done.returncode == ExitStatus.PROTOCOL, done.stderr
    assert "answered" in assert_one_line_error(done.stderr)
    assert done.stdout == b""


def test_an_id_token_nested_past_the_stack_is_only_no_identity(logged_in: AuthServer) -> None:
    """The identity is unverified and only shown: an unreadable id_token, however it is
    unreadable, costs the identity and never the login or the refresh."""
    id_token = f"{_b64url(b'{}')}.{_b64url(DEEP)}.sig"
    logged_in.token_answer = (200, _answer(expires_in=3600, id_token=id_token))
    done = run_process(["oauth", "token"])
    assert (done.returncode, done.stdout) == (0, b"tok\n"), done.stderr


ABSURD = [1e300, 10**400, "9" * 5000, math.inf]
ABSURD_IDS = ["1e300", "10**400", "5000 nines as a string", "Infinity"]


@pytest.mark.parametrize("lifetime", ABSURD, ids=ABSURD_IDS)
def test_an_absurd_expires_in_is_bounded_and_the_tokens_stay_readable(
    logged_in: AuthServer, lifetime: object
) -> None:
    text = json.dumps(lifetime)
    body = _answer().replace(b'"Bearer"', b'"Bearer", "expires_in": ' + text.encode())
    logged_in.token_answer = (200, body)
    done = run_process(["oauth", "token"])
    assert (done.returncode, done.stdout) == (0, b"tok\n"), done.stderr
    status = run_process(["oauth", "status", "--json"])
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["access_token_valid"] is True
    again = run_process(["oauth", "token"])  # the cached token: no second refresh
    assert (again.returncode, again.stdout) == (0, b"tok\n"), again.stderr
    assert logged_in.requests["/token"] == 2  # the login's and the one refresh


def test_an_absurd_expires_in_at_login_is_bounded(
    config_file: Path, auth_server: AuthServer
) -> None:
    auth_server.reported_lifetime = 1e300
    write_config(config_file, auth_server)
    code, _, err = browser_login()
    assert code == 0, err
    status = run_process(["oauth", "status", "--json"])
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["access_token_valid"] is True


@pytest.mark.parametrize(
    "lifetime", [b"NaN", b"-Infinity", b"0", b"-1", b"true", b'"1e3"', b'"\\u00b2"', b"null"]
)
def test_an_expires_in_that_is_no_positive_number_is_76(
    logged_in: AuthServer, lifetime: bytes
) -> None:
    body = _answer().replace(b'"Bearer"', b'"Bearer", "expires_in": ' + lifetime)
    logged_in.token_answer = (200, body)
    done = run_process(["oauth", "token"])
    assert done.returncode == ExitStatus.PROTOCOL, done.stderr
    assert "expires_in" in assert_one_line_error(done.stderr)


@pytest.mark.parametrize("lifetime", [*ABSURD, 10**9], ids=[*ABSURD_IDS, "10**9"])
def test_token_set_bounds_the_lifetime(lifetime: object) -> None:
    granted = token_set({"access_token": "tok", "expires_in": lifetime}, now=1000.0)
    bound = tokens.MAX_LIFETIME
    assert (granted.lifetime, granted.expires_at) == (bound, 1000.0 + bound)


def test_token_set_keeps_an_ordinary_lifetime() -> None:
    granted = token_set({"access_token": "tok", "expires_in": 3599}, now=1000.0)
    assert (granted.lifetime, granted.expires_at) == (3599.0, 4599.0)


def test_token_set_refuses_nan() -> None:
    with pytest.raises(ProtocolError):
        token_set({"access_token": "tok", "expires_in": math.nan})


@pytest.mark.parametrize(
    "interval", [10**400, 1000, math.nan, True], ids=["10**400", "past expires_in", "NaN", "true"]
)
def test_a_device_grant_with_an_absurd_interval_is_76(
    config_file: Path, auth_server: AuthServer, interval: object
) -> None:
    write_config(config_file, auth_server)
    auth_server.device_answer = {"interval": interval}  # expires_in: 900
    done = run_process(["oauth", "login", "--device"])
    assert done.returncode == ExitStatus.PROTOCOL, done.stderr
    assert "interval" in assert_one_line_error(done.stderr)
    assert auth_server.requests["/token"] == 0


def test_a_device_grant_lasting_past_floats_range_is_polled_as_usual(
    config_file: Path, auth_server: AuthServer
) -> None:
    write_config(config_file, auth_server)
    auth_server.device_sequence = ()
    auth_server.device_interval = 1
    auth_server.device_answer = {"expires_in": 10**400}
    done = run_process(["oauth", "login", "--device"])
    assert done.returncode == 0, done.stderr
    assert auth_server.requests["/token"] == 1


# -- the SASL error challenge ------------------------------------------------------------


def assert_one_short_line(detail: str) -> None:
    assert detail.isprintable() and len(detail) <= 80, detail


@given(st.binary(max_size=512))
@example(DEEP_CHALLENGE.encode("ascii"))
@example(base64.b64encode(DEEP))
@example(base64.b64encode(b'{"status": ' + DEEP + b"}"))
@example(base64.b64encode(b'{"status": "401\nmailcli: error: forged"}'))
@example(base64.b64encode(b'{"status": "' + b"4" * 10_000 + b'"}'))
def test_error_detail_never_raises_and_is_one_short_line(challenge: bytes) -> None:
    assert_one_short_line(error_detail(challenge))


STATUS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(STATUS)
def test_error_detail_of_any_status_is_one_short_line(status: object) -> None:
    challenge = base64.b64encode(json.dumps({"status": status}).encode())
    assert_one_short_line(error_detail(challenge))


def test_a_deep_error_challenge_is_no_error_detail() -> None:
    assert error_detail(DEEP_CHALLENGE.encode("ascii")) == "no error detail"


class FixedTokens(BearerSource):
    """Two made-up tokens: the first, then the renewed one (the servers refuse both)."""

    def __init__(self) -> None:
        self.renewals = 0

    def __call__(self) -> str:
        return "first-token"

    def renew(self) -> str:
        self.renewals += 1
        return "renewed-token"


def _smtp_login(endpoint: Endpoint, source: BearerSource) -> None:
    with SmtpSession(endpoint, credential=source, transcript=Transcript(None)):
        pass


def _pop3_stat(endpoint: Endpoint, source: BearerSource) -> None:
    with Pop3Session(endpoint, credential=source, transcript=Transcript(None)) as pop:
        pop.command("STAT")


LOGINS: dict[MailProtocol, tuple[Script, Callable[[Endpoint, BearerSource], None]]] = {
    "smtp": (smtp_refusing("XOAUTH2 OAUTHBEARER", f"334 {DEEP_CHALLENGE}"), _smtp_login),
    "pop3": (pop3_refusing("XOAUTH2 OAUTHBEARER", f"+ {DEEP_CHALLENGE}"), _pop3_stat),
}


@pytest.mark.parametrize("mechanism", [XOAUTH2, OAUTHBEARER])
@pytest.mark.parametrize("protocol", LOGINS)
def test_a_deep_error_challenge_is_a_refused_token_77(
    protocol: MailProtocol, mechanism: str
) -> None:
    script, login = LOGINS[protocol]
    source = FixedTokens()
    with ScriptedServer(script) as server:
        endpoint = make_endpoint(protocol, server.port, user="alice", auth=mechanism)
        with pytest.raises(MailcliError) as caught:
            login(endpoint, source)
    assert caught.value.exit_status == ExitStatus.NOPERM
    assert "no error detail" in caught.value.message
    assert source.renewals == 1  # refused, renewed once, refused again
