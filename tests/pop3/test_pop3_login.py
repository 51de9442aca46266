"""How a POP3 session logs in, against scripted servers: the method follows the
session's own state, never the transcript's display flags."""

from __future__ import annotations

from mailcli.auth.credential import Password
from mailcli.pop3.session import Pop3Session
from mailcli.transcript import Transcript
from tests.helpers import make_endpoint
from tests.servers.pop3scripts import minimal_server
from tests.servers.scripted import ScriptedServer


def test_a_cleartext_session_uses_user_even_when_the_transcript_says_tls() -> None:
    transcript = Transcript()
    transcript.tls = True  # how the trace draws its arrows, not whether the line is safe
    with ScriptedServer(minimal_server(["USER", "SASL PLAIN"])) as server:
        endpoint = make_endpoint("pop3", server.port, user="alice")
        with Pop3Session(endpoint, credential=Password(lambda: "Secret-pw"), transcript=transcript):
            pass
    assert "USER alice" in server.received
    assert not any(line.upper().startswith("AUTH") for line in server.received)
