"""Every message that names a server over IPv6 writes it as `[::1]:PORT`, never the
ambiguous `::1:PORT` (`endpoint.host_port`): STARTTLS and STLS not offered, a server
hanging up before its greeting, relay failover (its trace line, the `sent through
fallback` line and the trail's `server`), `check`'s connect line; and `check --audit`
knows ::1 for a loopback address. Scripted servers on ::1 play the faults; Dovecot on
both loopbacks the rest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailcli.check.audit import run_audit
from mailcli.check.pop3_probes import probe_banner
from tests.helpers import Mailcli, Result, audit_target, run_cli
from tests.servers import skip_unless_ready
from tests.servers.accounts import Account, Security
from tests.servers.dovecot import Dovecot
from tests.servers.dualstack import ScriptedServer6, ipv6_loopback_missing
from tests.servers.pop3scripts import minimal_server
from tests.servers.ports import free_port
from tests.servers.scripted import Conn
from tests.servers.smtpscripts import smtp_server


@pytest.fixture(autouse=True)
def ipv6_loopback() -> None:
    skip_unless_ready(ipv6_loopback_missing())


def send(server: ScriptedServer6, *extra: str, security: Security = "none") -> Result:
    anonymous = Mailcli(Account.scripted(server, None, None, security=security))
    return anonymous(
        "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x", *extra
    )


def test_starttls_not_offered_names_the_server_in_brackets() -> None:
    with ScriptedServer6(smtp_server()) as server:
        result = send(server, security="starttls")
    assert result.code == 69, result.stderr
    assert f"[::1]:{server.port} does not offer STARTTLS" in result.stderr


def test_stls_not_offered_names_the_server_in_brackets() -> None:
    with ScriptedServer6(minimal_server(["USER"])) as server:
        result = Mailcli(Account.scripted(server, security="starttls"))("stat")
    assert result.code == 69, result.stderr
    assert f"[::1]:{server.port} does not offer STLS" in result.stderr


def test_a_hang_up_before_the_greeting_names_the_server_in_brackets() -> None:
    def hang_up(conn: Conn) -> None:
        conn.close()

    with ScriptedServer6(hang_up) as server:
        result = send(server)
    assert result.code == 75, result.stderr
    assert f"[::1]:{server.port} closed the connection" in result.stderr


def test_failover_to_an_ipv6_relay_names_it_in_brackets(config_file: Path, tmp_path: Path) -> None:
    """`first` is a closed port; its fallback `six` on ::1 takes the message."""
    dead = free_port()
    with ScriptedServer6(smtp_server()) as server:
        config_file.write_text(
            'default_account = "first"\n[accounts.first]\nfallback = ["six"]\n'
            f'[accounts.first.smtp]\nhost = "127.0.0.1"\nport = {dead}\nsecurity = "none"\n'
            f'[accounts.six.smtp]\nhost = "::1"\nport = {server.port}\nsecurity = "none"\n'
        )
        log = tmp_path / "mail.log"
        args = ["--trace", "send", "--from", "a@example.test", "--to", "b@example.test"]
        result = run_cli([*args, "--body", "x", "--log", str(log)])
    where = f"[::1]:{server.port}"
    assert result.code == 0, result.stderr
    assert f"== trying fallback six ({where}) after: " in result.stderr
    assert f"sent through fallback six ({where})" in result.stdout + result.stderr
    assert f" server={where} relay=six " in log.read_text()


def test_check_says_where_it_connected_in_brackets(dovecot6: Dovecot) -> None:
    account = replace(Account.pop3(dovecot6, "alice", "alice-pw"), host="::1")
    report = Mailcli(account).json("check", "pop3")
    (connect,) = [f for f in report["findings"] if f["id"] == "connect"]
    assert connect["summary"].startswith(f"connected to [::1]:{dovecot6.pop3_port} in "), connect


def test_an_audit_of_a_server_on_ipv6_loopback_says_it_is_loopback(dovecot6: Dovecot) -> None:
    target = audit_target("pop3", dovecot6.pop3_port, "starttls", host="::1")
    (note,) = [f for f in run_audit(target, [probe_banner]) if f.id == "trusted-network"]
    assert note.level == "info", note
    assert "::1 is a loopback address" in note.summary
