"""The SASL encoders of `mailcli.auth.sasl`: the RFCs' examples, and for ASCII
credentials the very responses smtplib's own authobjects give (what SMTP AUTH sent
before the encoders moved to one module)."""

from __future__ import annotations

import smtplib

import pytest

from mailcli.auth.sasl import (
    OAUTHBEARER,
    XOAUTH2,
    apop,
    choose_bearer_mechanism,
    cram_md5,
    error_answer,
    login,
    plain,
    xoauth2,
)
from mailcli.errors import ExitStatus, UnavailableError

RFC_USER, RFC_PASSWORD = "tim", "tanstaaftanstaaf"
RFC2195_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"


def test_plain_is_rfc4616_without_authorization_identity() -> None:
    assert plain(RFC_USER, RFC_PASSWORD) == b"\0tim\0tanstaaftanstaaf"


def test_cram_md5_is_rfc2195s_example() -> None:
    expected = b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert cram_md5(RFC_USER, RFC_PASSWORD, RFC2195_CHALLENGE) == expected


def test_login_sends_the_user_then_the_password() -> None:
    assert login(RFC_USER, RFC_PASSWORD) == (b"tim", b"tanstaaftanstaaf")


def test_non_ascii_credentials_are_utf8() -> None:
    assert plain("jürgen", "pässword") == "\0jürgen\0pässword".encode()
    assert xoauth2("jürgen", "t") == "user=jürgen\x01auth=Bearer t\x01\x01".encode()


@pytest.mark.parametrize(("user", "password"), [("alice", "Secret-pw"), ("a@b.example", "p w")])
def test_the_encoders_answer_as_smtplib_did(user: str, password: str) -> None:
    smtp = smtplib.SMTP()  # not connected: only its authobjects are used
    smtp.user, smtp.password = user, password
    smtp._auth_challenge_count = 2  # type: ignore[attr-defined]  # LOGIN's password turn
    assert plain(user, password).decode("ascii") == smtp.auth_plain()
    name, secret = login(user, password)
    assert (name.decode("ascii"), secret.decode("ascii")) == (
        smtp.auth_login(),
        smtp.auth_login(b"Password:"),
    )
    response = cram_md5(user, password, RFC2195_CHALLENGE).decode("ascii")
    assert response == smtp.auth_cram_md5(RFC2195_CHALLENGE)


def test_the_error_answers() -> None:
    assert error_answer(XOAUTH2) == b""
    assert error_answer(OAUTHBEARER) == b"\x01"
    assert error_answer("oauthbearer") == b"\x01"


def test_apop_is_rfc1939s_example() -> None:
    digest = apop(b"<1896.697170952@dbc.mtview.ca.us>", "tanstaaf")
    assert digest == "c4c9334bac560ecc979e58001b3e22fb"


def test_a_forced_bearer_mechanism_must_be_offered_and_carry_a_token() -> None:
    assert choose_bearer_mechanism(["xoauth2"], "xoauth2", "google") == XOAUTH2
    with pytest.raises(UnavailableError) as not_offered:
        choose_bearer_mechanism(["PLAIN", "XOAUTH2"], "oauthbearer", "google")
    assert not_offered.value.message == (
        "the server does not offer AUTH OAUTHBEARER; it offers PLAIN XOAUTH2"
    )
    assert not_offered.value.exit_status == ExitStatus.UNAVAILABLE
    with pytest.raises(UnavailableError, match="AUTH PLAIN does not carry an OAuth2 token"):
        choose_bearer_mechanism(["PLAIN"], "plain", "google")
