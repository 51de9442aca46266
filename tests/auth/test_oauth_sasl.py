"""OAuth2 SASL (XOAUTH2, OAUTHBEARER) in the SMTP and POP3 sessions, against Dovecot's
oauth2 passdb and Postfix through it, plus scripted servers for the exact exchanges.

The sessions get a `BearerSource` (here `MintedTokens`, which signs JWTs the test Dovecot
validates and counts `renew()` calls) instead of a password source.
"""

from __future__ import annotations

import base64

import pytest

from mailcli.auth.credential import BearerSource
from mailcli.auth.sasl import (
    OAUTHBEARER,
    XOAUTH2,
    bearer_payload,
    oauthbearer,
    xoauth2,
)
from mailcli.config import OAuthProvider
from mailcli.endpoint import Endpoint
from mailcli.errors import ExitStatus, MailcliError
from mailcli.pop3.session import Pop3Session
from mailcli.smtp.envelope import Envelope, Outgoing
from mailcli.smtp.session import SmtpSession, submit
from mailcli.transcript import MASK, Transcript
from tests.helpers import make_endpoint
from tests.servers import NEEDS, jwt, require
from tests.servers.authserver import AuthServer
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox, make_mailbox
from tests.servers.postfix import Postfix
from tests.servers.saslscripts import pop3_refusing, smtp_refusing
from tests.servers.scripted import ScriptedServer

MECHANISMS = [XOAUTH2, OAUTHBEARER]
FORMS = {"initial-response": False, "two-step": True}
ERROR_CHALLENGE = "eyJzdGF0dXMiOiI0MDEifQ=="  # {"status":"401"}
SMTP_ERROR_CHALLENGE = f"334 {ERROR_CHALLENGE}"
POP3_ERROR_CHALLENGE = f"+ {ERROR_CHALLENGE}"


class MintedTokens(BearerSource):
    """Tokens for `user`: "valid", "expired" (exp in the past) or "forged" (another key),
    the first from `__call__`, the following from `renew()` (counted)."""

    def __init__(
        self,
        key: bytes,
        user: str,
        *,
        first: str = "valid",
        renewed: str = "valid",
        provider: OAuthProvider = "custom",
        two_step: bool | None = None,
    ) -> None:
        self.key, self.user = key, user
        self.first, self.renewed = first, renewed
        self.provider = provider
        self.two_step = two_step
        self.issued: list[str] = []
        self.renewals = 0

    def __call__(self) -> str:
        return self._mint(self.first)

    def renew(self) -> str:
        self.renewals += 1
        return self._mint(self.renewed)

    def _mint(self, kind: str) -> str:
        key = jwt.new_key() if kind == "forged" else self.key
        token = jwt.mint(key, self.user, lifetime=-60 if kind == "expired" else 300)
        self.issued.append(token)
        return token


class Trace:
    """A transcript recording into a list, with message bodies shown (--trace-data)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.transcript = Transcript(self.lines.append, show_data=True)

    def sent(self) -> list[str]:
        """Client lines without their arrow (-> or ~>)."""
        return [line[3:] for line in self.lines if line[:2] in ("->", "~>")]

    def assert_no_token(self, source: MintedTokens, host: str, port: int) -> None:
        """No token, nor any encoding of an exchange carrying one, in the transcript."""
        text = "\n".join(self.lines)
        assert source.issued
        for token in source.issued:
            payloads = [xoauth2(source.user, token), oauthbearer(source.user, token, host, port)]
            for secret in [token, *token.split("."), *(_b64(p) for p in payloads)]:
                assert secret not in text
        assert "Bearer" not in text
        # The OAUTHBEARER error answer is masked too. Only the client's lines: "AQ==" can
        # occur by chance in what the server sends (Dovecot's random APOP timestamp).
        assert not any(_b64(b"\x01") in line for line in self.sent())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pop3_endpoint(dovecot: Dovecot, mailbox: Mailbox, auth: str | None = None) -> Endpoint:
    cafile = str(dovecot.certs.ca_pem)
    return make_endpoint(
        "pop3", dovecot.pop3s_port, security="tls", user=mailbox.user, auth=auth, cafile=cafile
    )


def smtp_endpoint(postfix: Postfix, mailbox: Mailbox, auth: str | None = None) -> Endpoint:
    cafile = str(postfix.certs.ca_pem)
    return make_endpoint(
        "smtp", postfix.smtps_port, security="tls", user=mailbox.user, auth=auth, cafile=cafile
    )


def outgoing(mailbox: Mailbox) -> Outgoing:
    data = b"From: a@example.test\r\nTo: x\r\nSubject: oauth\r\n\r\nbearer\r\n"
    return Outgoing(Envelope("a@example.test", (mailbox.address,)), data)


@pytest.fixture
def oauth_mailbox(oauth_dovecot: Dovecot) -> Mailbox:
    return make_mailbox(oauth_dovecot, "oa")


def pop3_stat(endpoint: Endpoint, source: BearerSource, trace: Trace) -> str:
    with Pop3Session(endpoint, credential=source, transcript=trace.transcript) as pop:
        return pop.command("STAT")


def smtp_login(endpoint: Endpoint, source: BearerSource, trace: Trace) -> None:
    with SmtpSession(endpoint, credential=source, transcript=trace.transcript):
        pass


# -- logins that succeed --------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_pop3_bearer_login(
    oauth_dovecot: Dovecot, oauth_mailbox: Mailbox, mechanism: str, form: str
) -> None:
    oauth_mailbox.drop(b"Subject: one\r\n\r\nbody\r\n")
    source = MintedTokens(oauth_dovecot.oauth2_key or b"", oauth_mailbox.user)
    source.two_step = FORMS[form]
    endpoint = pop3_endpoint(oauth_dovecot, oauth_mailbox, auth=mechanism.lower())
    trace = Trace()
    assert pop3_stat(endpoint, source, trace).startswith("+OK 1 ")
    sent = trace.sent()
    if FORMS[form]:
        auth = sent.index(f"AUTH {mechanism}")
        assert sent[auth + 1] == MASK
        assert {"<~ +", "<~ + "} & set(trace.lines)  # the server's empty continuation
    else:
        auth = sent.index(f"AUTH {mechanism} {MASK}")
    assert sent[auth + 1 + FORMS[form]] == "STAT"  # no error answer: accepted at once
    assert source.renewals == 0
    trace.assert_no_token(source, endpoint.host, endpoint.port)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_smtp_bearer_submission_delivers(
    oauth_postfix: Postfix, oauth_mailbox: Mailbox, mechanism: str, form: str
) -> None:
    source = MintedTokens(oauth_postfix.dovecot.oauth2_key or b"", oauth_mailbox.user)
    source.two_step = FORMS[form]
    endpoint = smtp_endpoint(oauth_postfix, oauth_mailbox, auth=mechanism.lower())
    trace = Trace()
    result = submit(
        endpoint, outgoing(oauth_mailbox), credential=source, transcript=trace.transcript
    )
    assert result.accepted == [oauth_mailbox.address], (result, oauth_postfix.maillog()[-3000:])
    (delivered,) = oauth_postfix.wait_for_delivery(oauth_mailbox.user)
    assert b"bearer" in delivered.read_bytes()
    expected = f"AUTH {mechanism}" if FORMS[form] else f"AUTH {mechanism} {MASK}"
    assert expected in trace.sent()
    assert source.renewals == 0
    trace.assert_no_token(source, endpoint.host, endpoint.port)


def test_the_default_is_oauthbearer_when_offered(
    oauth_dovecot: Dovecot, oauth_postfix: Postfix, oauth_mailbox: Mailbox
) -> None:
    source = MintedTokens(oauth_dovecot.oauth2_key or b"", oauth_mailbox.user)
    pop3, smtp = Trace(), Trace()
    pop3_stat(pop3_endpoint(oauth_dovecot, oauth_mailbox), source, pop3)
    smtp_login(smtp_endpoint(oauth_postfix, oauth_mailbox), source, smtp)
    assert f"AUTH OAUTHBEARER {MASK}" in pop3.sent()
    assert f"AUTH OAUTHBEARER {MASK}" in smtp.sent()


def test_microsoft_gets_xoauth2_even_when_oauthbearer_is_offered(
    oauth_dovecot: Dovecot, oauth_postfix: Postfix, oauth_mailbox: Mailbox
) -> None:
    source = MintedTokens(oauth_dovecot.oauth2_key or b"", oauth_mailbox.user)
    source.provider = "microsoft"
    pop3, smtp = Trace(), Trace()
    pop3_stat(pop3_endpoint(oauth_dovecot, oauth_mailbox), source, pop3)
    smtp_login(smtp_endpoint(oauth_postfix, oauth_mailbox), source, smtp)
    # POP3: Microsoft's two-step form; SMTP: the initial response.
    sent = pop3.sent()
    assert sent[sent.index("AUTH XOAUTH2") + 1] == MASK
    assert f"AUTH XOAUTH2 {MASK}" in smtp.sent()
    pop3.assert_no_token(source, "127.0.0.1", oauth_dovecot.pop3s_port)


# -- refused tokens: answer, renew once, retry once ----------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("protocol", ["pop3", "smtp"])
def test_an_expired_token_is_renewed_once_and_the_retry_succeeds(
    oauth_dovecot: Dovecot,
    oauth_postfix: Postfix,
    oauth_mailbox: Mailbox,
    protocol: str,
    mechanism: str,
) -> None:
    key = oauth_dovecot.oauth2_key or b""
    source = MintedTokens(key, oauth_mailbox.user, first="expired")
    trace = Trace()
    if protocol == "pop3":
        endpoint = pop3_endpoint(oauth_dovecot, oauth_mailbox, auth=mechanism)
        assert pop3_stat(endpoint, source, trace).startswith("+OK 0 ")
    else:
        endpoint = smtp_endpoint(oauth_postfix, oauth_mailbox, auth=mechanism)
        smtp_login(endpoint, source, trace)
    assert source.renewals == 1
    sent = trace.sent()
    first = sent.index(f"AUTH {mechanism} {MASK}")
    # the refused attempt, its error answer (masked), then the retry with the new token
    assert sent[first + 1 : first + 3] == [MASK, f"AUTH {mechanism} {MASK}"]
    trace.assert_no_token(source, endpoint.host, endpoint.port)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("protocol", ["pop3", "smtp"])
def test_a_token_that_stays_bad_is_77_with_the_hint(
    oauth_dovecot: Dovecot,
    oauth_postfix: Postfix,
    oauth_mailbox: Mailbox,
    protocol: str,
    mechanism: str,
) -> None:
    key = oauth_dovecot.oauth2_key or b""
    source = MintedTokens(key, oauth_mailbox.user, first="forged", renewed="forged")
    trace = Trace()
    with pytest.raises(MailcliError) as caught:
        if protocol == "pop3":
            endpoint = pop3_endpoint(oauth_dovecot, oauth_mailbox, auth=mechanism)
            pop3_stat(endpoint, source, trace)
        else:
            endpoint = smtp_endpoint(oauth_postfix, oauth_mailbox, auth=mechanism)
            smtp_login(endpoint, source, trace)
    assert caught.value.exit_status == ExitStatus.NOPERM
    assert "mailcli oauth login" in (caught.value.hint or "")
    status = "401" if mechanism == XOAUTH2 else "invalid_token"
    assert f"status {status}" in caught.value.message
    assert source.renewals == 1
    assert trace.sent().count(f"AUTH {mechanism} {MASK}") == 2
    trace.assert_no_token(source, endpoint.host, endpoint.port)


# -- scripted servers: the exact exchanges ---------------------------------------------


def scripted_smtp_endpoint(server: ScriptedServer, auth: str | None = None) -> Endpoint:
    return make_endpoint("smtp", server.port, user="alice", security="none", auth=auth)


@pytest.mark.parametrize(("mechanism", "answer"), [(XOAUTH2, ""), (OAUTHBEARER, "AQ==")])
def test_smtp_answers_the_error_challenge_then_retries_once(mechanism: str, answer: str) -> None:
    source = MintedTokens(jwt.new_key(), "alice", first="forged", renewed="forged")
    trace = Trace()
    with ScriptedServer(smtp_refusing("XOAUTH2 OAUTHBEARER", SMTP_ERROR_CHALLENGE)) as server:
        endpoint = scripted_smtp_endpoint(server, auth=mechanism)
        with pytest.raises(MailcliError) as caught:
            smtp_login(endpoint, source, trace)
    assert caught.value.exit_status == ExitStatus.NOPERM
    assert "status 401" in caught.value.message
    assert source.renewals == 1
    attempts = [
        _b64(bearer_payload(mechanism, "alice", t, "127.0.0.1", server.port)) for t in source.issued
    ]
    assert server.received[1:] == [
        f"AUTH {mechanism} {attempts[0]}",
        answer,
        f"AUTH {mechanism} {attempts[1]}",
        answer,
        "quit",  # smtplib's spelling
    ]
    assert trace.sent()[1:] == [f"AUTH {mechanism} {MASK}", MASK] * 2 + ["quit"]
    trace.assert_no_token(source, endpoint.host, endpoint.port)


def test_smtp_temporary_auth_failure_is_75_without_renewing() -> None:
    script = smtp_refusing("XOAUTH2", "454 4.7.0 Temporary authentication failure")
    source = MintedTokens(jwt.new_key(), "alice")
    with ScriptedServer(script) as server, pytest.raises(MailcliError) as caught:
        smtp_login(scripted_smtp_endpoint(server), source, Trace())
    assert caught.value.exit_status == ExitStatus.TEMPFAIL
    assert source.renewals == 0


def test_smtp_forced_oauthbearer_not_offered_is_69_before_any_token() -> None:
    source = MintedTokens(jwt.new_key(), "alice")
    script = smtp_refusing("PLAIN XOAUTH2", SMTP_ERROR_CHALLENGE)
    with ScriptedServer(script) as server, pytest.raises(MailcliError) as caught:
        smtp_login(scripted_smtp_endpoint(server, auth="oauthbearer"), source, Trace())
    assert caught.value.exit_status == ExitStatus.UNAVAILABLE
    assert "OAUTHBEARER" in caught.value.message
    assert source.issued == []
    assert [line.split(" ")[0].upper() for line in server.received] == ["EHLO", "QUIT"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("mechanism", "answer"), [(XOAUTH2, ""), (OAUTHBEARER, "AQ==")])
def test_pop3_answers_the_error_challenge_then_retries_once(
    mechanism: str, answer: str, form: str
) -> None:
    source = MintedTokens(jwt.new_key(), "alice", first="forged", renewed="forged")
    source.two_step = FORMS[form]
    trace = Trace()
    with ScriptedServer(pop3_refusing("PLAIN XOAUTH2 OAUTHBEARER", POP3_ERROR_CHALLENGE)) as server:
        endpoint = make_endpoint("pop3", server.port, user="alice", security="none", auth=mechanism)
        with pytest.raises(MailcliError) as caught:
            pop3_stat(endpoint, source, trace)
    assert caught.value.exit_status == ExitStatus.NOPERM
    assert "status 401" in caught.value.message
    assert source.renewals == 1

    def encode(token: str) -> str:
        return _b64(bearer_payload(mechanism, "alice", token, "127.0.0.1", server.port))

    if FORMS[form]:
        attempts = [[f"AUTH {mechanism}", encode(t), answer] for t in source.issued]
        masked = [f"AUTH {mechanism}", MASK, MASK]
    else:
        attempts = [[f"AUTH {mechanism} {encode(t)}", answer] for t in source.issued]
        masked = [f"AUTH {mechanism} {MASK}", MASK]
    assert server.received[1:] == [*attempts[0], *attempts[1]]  # then the client hangs up
    assert trace.sent()[1:] == masked * 2
    trace.assert_no_token(source, endpoint.host, endpoint.port)


def test_pop3_temporary_auth_failure_is_75_without_renewing() -> None:
    source = MintedTokens(jwt.new_key(), "alice")
    script = pop3_refusing("XOAUTH2", "-ERR [SYS/TEMP] try again later")
    with ScriptedServer(script) as server, pytest.raises(MailcliError) as caught:
        endpoint = make_endpoint("pop3", server.port, user="alice", security="none")
        pop3_stat(endpoint, source, Trace())
    assert caught.value.exit_status == ExitStatus.TEMPFAIL
    assert source.renewals == 0


def test_pop3_forced_oauthbearer_not_offered_is_69_before_any_token() -> None:
    source = MintedTokens(jwt.new_key(), "alice")
    with ScriptedServer(pop3_refusing("PLAIN XOAUTH2", POP3_ERROR_CHALLENGE)) as server:
        endpoint = make_endpoint(
            "pop3", server.port, user="alice", security="none", auth="oauthbearer"
        )
        with pytest.raises(MailcliError) as caught:
            pop3_stat(endpoint, source, Trace())
    assert caught.value.exit_status == ExitStatus.UNAVAILABLE
    assert source.issued == []
    assert server.received == ["CAPA"]


# -- Dovecot asking an authorization server (introspection_mode = post) ----------------


class IntrospectedTokens(BearerSource):
    """Access tokens the authorization server issued (so its /introspect knows them);
    `revoke_first` revokes the first one, as an expired or revoked grant would be."""

    def __init__(self, server: AuthServer, *, revoke_first: bool) -> None:
        self.server = server
        self.revoke_first = revoke_first
        self.renewals = 0

    def __call__(self) -> str:
        token = self._issue()
        if self.revoke_first:
            self.server.revoke({"token": token, "client_id": self.server.client_id})
        return token

    def renew(self) -> str:
        self.renewals += 1
        return self._issue()

    def _issue(self) -> str:
        token: str = self.server._tokens(with_refresh=False)["access_token"]
        return token


@pytest.mark.parametrize("revoke_first", [False, True])
def test_pop3_login_through_dovecot_introspection(certs: Certs, revoke_first: bool) -> None:
    require(*NEEDS["dovecot"], need_root=True)
    server = AuthServer(email="alice")  # Dovecot user names have no domain
    url = server.url("/introspect")
    try:
        with Dovecot(certs, {"alice": "alice-pw"}, oauth2_introspection_url=url) as dovecot:
            source = IntrospectedTokens(server, revoke_first=revoke_first)
            mailbox = Mailbox("alice", "", "alice@example.test", dovecot.maildir("alice"))
            trace = Trace()
            assert pop3_stat(pop3_endpoint(dovecot, mailbox), source, trace).startswith("+OK")
    finally:
        server.stop()
    assert server.requests["/introspect"] == 1 + revoke_first
    assert source.renewals == revoke_first
    assert f"AUTH OAUTHBEARER {MASK}" in trace.sent()


def test_smtp_non_ascii_user_is_sent_as_utf8() -> None:
    """RFC 7628: the user in a bearer payload is UTF-8, so a non-ASCII user name is sent
    (and refused here by the script, 77), never an internal error."""
    source = MintedTokens(jwt.new_key(), "jörg")
    script = smtp_refusing("XOAUTH2", SMTP_ERROR_CHALLENGE)
    with ScriptedServer(script) as server, pytest.raises(MailcliError) as caught:
        endpoint = make_endpoint("smtp", server.port, user="jörg", security="none")
        smtp_login(endpoint, source, Trace())
    assert caught.value.exit_status == ExitStatus.NOPERM
    auth = next(line for line in server.received if line.upper().startswith("AUTH XOAUTH2 "))
    assert base64.b64decode(auth.split()[2]).startswith("user=jörg\x01".encode())
