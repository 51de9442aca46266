"""SMTP AUTH's choice of a password mechanism (`smtp.auth.choose_mechanism`)."""

from __future__ import annotations

import pytest

from mailcli.errors import ExitStatus, UnavailableError
from mailcli.smtp.auth import choose_mechanism


def test_the_strongest_offered_mechanism_unless_one_is_forced() -> None:
    assert choose_mechanism(["LOGIN", "PLAIN", "CRAM-MD5"], None) == "CRAM-MD5"
    assert choose_mechanism(["LOGIN", "PLAIN"], None) == "PLAIN"
    assert choose_mechanism(["LOGIN", "PLAIN"], "login") == "LOGIN"
    assert choose_mechanism(["PLAIN", "XOAUTH2"], "xoauth2") == "XOAUTH2"


@pytest.mark.parametrize(
    ("offered", "forced", "message"),
    [
        ([], None, "the server offers no AUTH"),
        (["PLAIN"], "cram-md5", "the server does not offer AUTH CRAM-MD5; it offers PLAIN"),
        (["PLAIN", "GSSAPI"], "gssapi", "mailcli does not speak AUTH GSSAPI"),
        (["GSSAPI"], None, "no supported AUTH mechanism among GSSAPI"),
    ],
)
def test_no_usable_mechanism_is_69(offered: list[str], forced: str | None, message: str) -> None:
    with pytest.raises(UnavailableError) as refused:
        choose_mechanism(offered, forced)
    assert refused.value.message == message
    assert refused.value.exit_status == ExitStatus.UNAVAILABLE
