"""The SCRAM client of `mailcli.auth.scram`: the RFCs' test vectors (RFC 5802 section 5
for SHA-1, RFC 7677 section 3 for SHA-256) with their nonces injected, SASLprep's
examples (RFC 4013 section 3), and what it refuses of a server's messages."""

from __future__ import annotations

import base64

import pytest

from mailcli.auth.scram import MAX_ITERATIONS, ScramClient, saslprep
from mailcli.errors import ExitStatus, MailcliError

RFC5802 = (
    "SCRAM-SHA-1",
    "fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
)
RFC7677 = (
    "SCRAM-SHA-256",
    "rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
)
NONCE = "fyko+d2lbbFgONRv9qkxdawL"
GOOD_SERVER_FIRST = f"r={NONCE}server,s=QSXCR+Q6sek8bf92,i=4096"


@pytest.mark.parametrize("vector", [RFC5802, RFC7677], ids=["rfc5802-sha1", "rfc7677-sha256"])
def test_the_rfcs_exchange(vector: tuple[str, str, str, str, str]) -> None:
    mechanism, nonce, server_first, client_final, server_final = vector
    client = ScramClient(mechanism, "user", "pencil", nonce=nonce)
    assert client.respond(None) == f"n,,n=user,r={nonce}".encode()
    assert client.respond(server_first.encode()) == client_final.encode()
    assert not client.verified
    assert client.respond(server_final.encode()) == b""
    assert client.verified
    client.require_verified()


def test_a_random_nonce_is_fresh_and_needs_no_escaping() -> None:
    first = ScramClient("SCRAM-SHA-256", "user", "pencil").client_first().decode()
    again = ScramClient("SCRAM-SHA-256", "user", "pencil").client_first().decode()
    nonce = first.split(",r=")[1]
    assert len(nonce) >= 24 and "," not in nonce and first != again


def test_the_user_name_is_escaped() -> None:
    client = ScramClient("SCRAM-SHA-1", "a,b=c", "pencil", nonce="n0nce")
    assert client.client_first() == b"n,,n=a=2Cb=3Dc,r=n0nce"


def _status(client: ScramClient, server_first: str, server_final: str | None = None) -> int:
    """The exit status of the error the client raises on the server's messages."""
    with pytest.raises(MailcliError) as caught:
        client.respond(None)
        client.respond(server_first.encode())
        if server_final is not None:
            client.respond(server_final.encode())
    assert "pencil" not in str(caught.value) and "pencil" not in repr(client)
    return caught.value.exit_status


@pytest.mark.parametrize(
    "server_first",
    [
        "r=someone-elses-nonce,s=QSXCR+Q6sek8bf92,i=4096",
        f"r={NONCE},s=QSXCR+Q6sek8bf92,i=4096",  # nothing of the server's own
        f"r={NONCE}x,s=QSXCR+Q6sek8bf92,i=0",
        f"r={NONCE}x,s=QSXCR+Q6sek8bf92,i=4095",
        f"r={NONCE}x,s=QSXCR+Q6sek8bf92,i={2**31}",
        f"r={NONCE}x,s=QSXCR+Q6sek8bf92,i={MAX_ITERATIONS + 1}",
        f"r={NONCE}x,s=QSXCR+Q6sek8bf92,i=-4096",
        f"r={NONCE}x,s=QSXCR+Q6sek8bf92,i={'9' * 5000}",
        f"r={NONCE}x,s=not base64!,i=4096",
        f"r={NONCE}x,s=,i=4096",
        f"m=ext,r={NONCE}x,s=QSXCR+Q6sek8bf92,i=4096",
        f"s=QSXCR+Q6sek8bf92,r={NONCE}x,i=4096",
        "garbage",
        "",
    ],
)
def test_a_bad_server_first_is_a_protocol_error(server_first: str) -> None:
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=NONCE)
    assert _status(client, server_first) == ExitStatus.PROTOCOL


@pytest.mark.parametrize(
    "server_final",
    ["v=" + base64.b64encode(b"x" * 20).decode(), "v=", "v=!!", "", "garbage", "x=1"],
)
def test_a_wrong_or_missing_server_signature_is_refused(server_final: str) -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce=NONCE)
    assert _status(client, GOOD_SERVER_FIRST, server_final) == ExitStatus.NOPERM
    assert not client.verified


def test_success_without_a_signature_is_refused() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce=NONCE)
    client.respond(None)
    client.respond(GOOD_SERVER_FIRST.encode())
    with pytest.raises(MailcliError) as caught:
        client.require_verified()
    assert caught.value.exit_status == ExitStatus.NOPERM


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("invalid-proof", ExitStatus.NOPERM),
        ("unknown-user", ExitStatus.NOPERM),
        ("other-error", ExitStatus.NOPERM),
        ("no-resources", ExitStatus.TEMPFAIL),
        ("channel-bindings-dont-match", ExitStatus.PROTOCOL),
    ],
)
def test_a_server_error_is_mapped(error: str, status: int) -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce=NONCE)
    assert _status(client, GOOD_SERVER_FIRST, f"e={error}") == status


def test_a_third_challenge_is_a_protocol_error() -> None:
    server_first, server_final = RFC5802[2], RFC5802[4]
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", nonce=RFC5802[1])
    for message in (None, server_first.encode(), server_final.encode()):
        client.respond(message)
    with pytest.raises(MailcliError) as caught:
        client.respond(b"more")
    assert caught.value.exit_status == ExitStatus.PROTOCOL


@pytest.mark.parametrize(
    ("given", "prepared"),
    [
        ("I\u00adX", "IX"),  # soft hyphen mapped to nothing
        ("user", "user"),
        ("USER", "USER"),  # case preserved
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),  # NFKC
        ("a\u00a0b", "a b"),  # non-ASCII space mapped to SPACE
        ("\u0627\u0628", "\u0627\u0628"),  # right-to-left throughout
        ("p\u0221w", "p\u0221w"),  # unassigned in Unicode 3.2: allowed in a query
    ],
)
def test_saslprep_rfc4013_examples(given: str, prepared: str) -> None:
    assert saslprep(given) == prepared


@pytest.mark.parametrize(
    "refused", ["\u0007", "a\ue000", "\u0627\u0031", "\u0627a\u0628", "a\ufffe"]
)
def test_saslprep_refuses(refused: str) -> None:
    with pytest.raises(ValueError):
        saslprep(refused)


@pytest.mark.parametrize("password", ["bell\u0007", "\u00ad"])
def test_a_password_saslprep_refuses_is_a_credentials_error(password: str) -> None:
    client = ScramClient("SCRAM-SHA-1", "user", password, nonce=NONCE)
    client.respond(None)
    with pytest.raises(MailcliError) as caught:
        client.respond(GOOD_SERVER_FIRST.encode())
    assert caught.value.exit_status == ExitStatus.CONFIG
    assert password not in str(caught.value)
