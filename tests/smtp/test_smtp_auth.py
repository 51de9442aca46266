"""SMTP AUTH's choice of a password mechanism (`smtp.auth.choose_mechanism`): inside TLS
and in clear."""

from __future__ import annotations

import pytest

from mailcli.errors import ExitStatus, UnavailableError
from mailcli.smtp.auth import choose_mechanism


def test_inside_tls_plain_first_cram_md5_last_unless_one_is_forced() -> None:
    assert choose_mechanism(["LOGIN", "PLAIN", "CRAM-MD5"], None, tls=True) == "PLAIN"
    assert choose_mechanism(["LOGIN", "CRAM-MD5"], None, tls=True) == "LOGIN"
    assert choose_mechanism(["CRAM-MD5"], None, tls=True) == "CRAM-MD5"
    assert choose_mechanism(["LOGIN", "PLAIN"], "login", tls=True) == "LOGIN"
    assert choose_mechanism(["PLAIN", "CRAM-MD5"], "cram-md5", tls=True) == "CRAM-MD5"
    assert choose_mechanism(["PLAIN", "XOAUTH2"], "xoauth2", tls=True) == "XOAUTH2"


def test_in_clear_cram_md5_first_as_before() -> None:
    assert choose_mechanism(["LOGIN", "PLAIN", "CRAM-MD5"], None, tls=False) == "CRAM-MD5"
    assert choose_mechanism(["LOGIN", "PLAIN"], None, tls=False) == "PLAIN"
    assert choose_mechanism(["LOGIN", "PLAIN"], "login", tls=False) == "LOGIN"


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
        choose_mechanism(offered, forced, tls=True)
    assert refused.value.message == message
    assert refused.value.exit_status == ExitStatus.UNAVAILABLE
