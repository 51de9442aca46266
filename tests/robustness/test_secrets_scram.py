"""Secret hygiene of a SCRAM exchange under --debug and --trace together: when the
server misbehaves after the client-final went out (a wrong or missing signature, an
`e=` error), neither the transcript, the error line nor the --debug traceback holds the
password, the client-final message, its ClientProof, or the keys derived from the
password (SaltedPassword, ClientKey, StoredKey, ServerKey), in hex or base64.

tests/smtp/test_smtp_scram.py and tests/pop3/test_pop3_scram.py assert the masked
transcript lines without --debug; this adds the traceback and the derived keys, computed
here from the scripted server's salt and count and the client's own messages."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.helpers import Mailcli
from tests.servers.accounts import Account
from tests.servers.saslscripts import SCRAM_GOOD_FIRST, SCRAM_SALT, pop3_scram, smtp_scram
from tests.servers.scripted import ScriptedServer

PASSWORD = "Scram-Hygiene-pw4"
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}
ITERATIONS = 4096  # SCRAM_FAULTS' good server-first message


def derived_secrets(hash_name: str, client_first_b64: str, client_final_b64: str) -> list[bytes]:
    """RFC 5802's keys for PASSWORD and the scripted salt, the proof and the message,
    checked against the proof mailcli sent (so they are the keys it derived)."""
    salted = hashlib.pbkdf2_hmac(
        hash_name, PASSWORD.encode(), base64.b64decode(SCRAM_SALT), ITERATIONS
    )
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    server_key = hmac.digest(salted, b"Server Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    client_first_bare = base64.b64decode(client_first_b64).decode().split(",", 2)[2]
    client_final = base64.b64decode(client_final_b64).decode()
    without_proof, proof_b64 = client_final.rsplit(",p=", 1)
    nonce = client_first_bare.split("r=", 1)[1]
    server_first = SCRAM_GOOD_FIRST.replace("NONCE", nonce)
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, hash_name)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof).decode() == proof_b64  # the keys mailcli derived
    return [salted, client_key, server_key, stored_key, proof, client_final.encode()]


def forms(secret: bytes) -> list[str]:
    encoded = base64.b64encode(secret).decode()
    return [secret.hex(), secret.hex().upper(), encoded, encoded.rstrip("="), repr(secret)]


def run(protocol: str, mechanism: str, fault: str) -> tuple[int, str, list[str]]:
    """mailcli --debug --trace against the scripted server: status, output, its lines."""
    script = (smtp_scram if protocol == "smtp" else pop3_scram)(mechanism, fault)
    with ScriptedServer(script) as server:
        account = Account.scripted(server, "user", PASSWORD)
        if protocol == "smtp":
            command = ["send", "--from", "a@example.test", "--to", "b@example.test"]
            command += ["--body", "x", "--auth", mechanism.lower()]
        else:
            command = ["stat", "--auth", mechanism.lower()]
        result = Mailcli(account)("--debug", "--trace", *command, "--timeout", "5")
    return result.code, result.stdout + result.stderr, server.received


@pytest.mark.parametrize("fault", ["wrong-signature", "no-signature", "invalid-proof"])
@pytest.mark.parametrize("mechanism", list(HASHES))
@pytest.mark.parametrize("protocol", ["smtp", "pop3"])
def test_a_failed_scram_exchange_shows_no_secret(protocol: str, mechanism: str, fault: str) -> None:
    code, output, received = run(protocol, mechanism, fault)
    assert code == 77, output
    assert "Traceback" in output, output  # --debug showed the exception chain
    auth = next(i for i, line in enumerate(received) if line.upper().startswith("AUTH "))
    client_final = received[auth + 1]  # the client's second message, as sent
    assert base64.b64decode(client_final).startswith(b"c=biws,r="), received
    assert PASSWORD not in output
    assert client_final not in output
    client_first = received[auth].split(" ")[-1]
    for secret in derived_secrets(HASHES[mechanism], client_first, client_final):
        for form in forms(secret):
            assert form not in output, (form, output)
