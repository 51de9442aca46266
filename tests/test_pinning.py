"""Certificate pinning (--tls-fingerprint, key tls_fingerprint) against Dovecot and
Postfix presenting a leaf from a CA nobody trusts: the right pin connects (STARTTLS/STLS
and implicit TLS) while the CA chain alone is refused; a wrong pin is 77 naming both
fingerprints, and nothing crosses the connection after the handshake (no EHLO or CAPA,
no credential: the transcript ends at the handshake and the server logs no login). The
host name is still checked unless --insecure. `check` prints the fingerprint a pin takes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcli.tlsinfo import name_matches, parse_fingerprint
from tests.helpers import Mailcli, run_cli
from tests.servers import NEEDS, require
from tests.servers.accounts import Account, Security
from tests.servers.certs import Certs
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import make_mailbox
from tests.servers.postfix import Postfix
from tests.servers.procs import make_workdir
from tests.servers.stack import DEFAULT_USERS
from tests.servers.tlstrust import fingerprint, make_pinned_certs

WRONG_PIN = "SHA256:" + "AB" * 32
WRONG_PIN_SHOWN = "SHA256:" + ":".join(["AB"] * 32)


@pytest.fixture(scope="module")
def pinned_certs() -> Iterator[Certs]:
    directory = make_workdir("pinned-")
    yield make_pinned_certs(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def pinned_dovecot(pinned_certs: Certs) -> Iterator[Dovecot]:
    require(*NEEDS["dovecot"], need_root=True)
    with Dovecot(pinned_certs, DEFAULT_USERS) as server:
        yield server


@pytest.fixture(scope="module")
def pinned_postfix(pinned_dovecot: Dovecot) -> Iterator[Postfix]:
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(pinned_dovecot) as server:
        yield server


def _pop3(dovecot: Dovecot, security: str, host: str = "127.0.0.1") -> Account:
    mailbox = make_mailbox(dovecot, "pin")
    port = dovecot.pop3s_port if security == "tls" else dovecot.pop3_port
    mode: Security = "tls" if security == "tls" else "starttls"
    return Account(host, port, mailbox.user, mailbox.password, mode)


def _smtp(postfix: Postfix, dovecot: Dovecot, security: str) -> tuple[Account, str]:
    mailbox = make_mailbox(dovecot, "pin")
    port = postfix.smtps_port if security == "tls" else postfix.submission_port
    mode: Security = "tls" if security == "tls" else "starttls"
    return Account("127.0.0.1", port, mailbox.user, mailbox.password, mode), mailbox.address


def _error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("mailcli: error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def _wait_for_disconnects(dovecot: Dovecot, before: int) -> str:
    """Dovecot's log once it has logged the connection's end: "no auth attempts"."""
    deadline = time.monotonic() + 10
    while (log := dovecot.log()).count("(no auth attempts") <= before:
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    return log


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_pop3_right_pin_trusts_an_unknown_ca(
    pinned_dovecot: Dovecot, pinned_certs: Certs, security: str
) -> None:
    account = _pop3(pinned_dovecot, security)
    unpinned = Mailcli(account)("stat")
    assert unpinned.code == 77, unpinned.stderr  # the CA alone is not trusted
    pin = fingerprint(pinned_certs.cert_pem)
    result = Mailcli(account)("stat", "--tls-fingerprint", pin)
    assert result.code == 0, result.stderr
    other_form = "sha256:" + pin.removeprefix("SHA256:").replace(":", "").lower()
    both = Mailcli(account)("stat", "--tls-fingerprint", WRONG_PIN, "--tls-fingerprint", other_form)
    assert both.code == 0, both.stderr


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_pop3_wrong_pin_is_77_before_any_command_inside_tls(
    pinned_dovecot: Dovecot, pinned_certs: Certs, security: str
) -> None:
    account = _pop3(pinned_dovecot, security)
    before = pinned_dovecot.log().count("(no auth attempts")
    result = Mailcli(account)("--trace", "stat", "--tls-fingerprint", WRONG_PIN)
    assert result.code == 77, result.stderr
    error = _error_line(result.stderr)
    assert fingerprint(pinned_certs.cert_pem) in error and WRONG_PIN_SHOWN in error
    sent = [line for line in result.stderr.splitlines() if line.startswith(("->", "~>"))]
    assert sent == ([] if security == "tls" else ["-> CAPA", "-> STLS"]), result.stderr
    assert not any(line.startswith(("~>", "<~")) for line in result.stderr.splitlines())
    assert account.password and account.password not in result.stderr
    log = _wait_for_disconnects(pinned_dovecot, before)
    assert f"user=<{account.user}>" not in log  # no login, not even a failed one


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_right_pin_sends_and_wrong_pin_sends_nothing(
    pinned_postfix: Postfix, pinned_dovecot: Dovecot, pinned_certs: Certs, security: str
) -> None:
    account, address = _smtp(pinned_postfix, pinned_dovecot, security)
    pin = fingerprint(pinned_certs.cert_pem)
    send = ("send", "--from", address, "--to", address, "--body", "pinned")
    unpinned = Mailcli(account)(*send)
    assert unpinned.code == 77, unpinned.stderr
    right = Mailcli(account)(*send, "--tls-fingerprint", pin)
    assert right.code == 0, right.stderr
    wrong = Mailcli(account)("--trace", *send, "--tls-fingerprint", WRONG_PIN)
    assert wrong.code == 77, wrong.stderr
    error = _error_line(wrong.stderr)
    assert pin in error and WRONG_PIN_SHOWN in error
    lines = wrong.stderr.splitlines()
    assert not any(line.startswith(("~>", "<~")) for line in lines), wrong.stderr
    sent = [line.split()[1].upper() for line in lines if line.startswith("->")]
    assert sent == ([] if security == "tls" else ["EHLO", "STARTTLS"]), wrong.stderr
    log = pinned_postfix.wait_for_log(f"sasl_username={account.user}\n")
    assert log.count(f"sasl_username={account.user}") == 1  # the right pin's login only


def test_the_host_name_is_still_checked_unless_insecure(
    pinned_dovecot: Dovecot, pinned_certs: Certs
) -> None:
    account = _pop3(pinned_dovecot, "tls", host="localhost")  # the leaf names 127.0.0.1
    pin = fingerprint(pinned_certs.cert_pem)
    result = Mailcli(account)("stat", "--tls-fingerprint", pin)
    assert result.code == 77, result.stderr
    assert "not valid for 'localhost'" in result.stderr and "pinned.test" in result.stderr
    insecure = Mailcli(account)("stat", "--tls-fingerprint", pin, "--insecure")
    assert insecure.code == 0, insecure.stderr
    wrong = Mailcli(account)("stat", "--tls-fingerprint", WRONG_PIN, "--insecure")
    assert wrong.code == 77, wrong.stderr  # --insecure skips the name, never the pin


def test_the_account_key_takes_one_pin_or_a_list(
    pinned_dovecot: Dovecot, pinned_certs: Certs, tmp_path: Path
) -> None:
    mailbox = make_mailbox(pinned_dovecot, "pin")
    pin = fingerprint(pinned_certs.cert_pem)
    for value in (f'"{pin}"', f'["{WRONG_PIN}", "{pin}"]', f'"{WRONG_PIN}"'):
        config = tmp_path / "config.toml"
        config.write_text(
            f'[accounts.a]\nuser = "{mailbox.user}"\n[accounts.a.pop3]\nhost = "127.0.0.1"\n'
            f'port = {pinned_dovecot.pop3s_port}\nsecurity = "tls"\ntls_fingerprint = {value}\n'
        )
        env = {"MAILCLI_CONFIG": str(config), "MAILCLI_PASSWORD": mailbox.password}
        result = run_cli(["stat"], env=env)
        assert result.code == (77 if value == f'"{WRONG_PIN}"' else 0), (value, result.stderr)


@pytest.mark.parametrize(
    "value", ["AB" * 32, "SHA1:" + "AB" * 20, "SHA256:" + "AB" * 31, "SHA256:xyz", "SHA256:"]
)
def test_a_malformed_pin_is_64_as_an_option_and_78_as_a_key(value: str, tmp_path: Path) -> None:
    result = run_cli(["stat", "--host", "localhost", "--tls-fingerprint", value])
    assert result.code == 64, result.stderr
    assert "SHA256:<hex>" in result.stderr
    config = tmp_path / "config.toml"
    config.write_text(f'[accounts.a.pop3]\nhost = "localhost"\ntls_fingerprint = "{value}"\n')
    result = run_cli(["stat"], env={"MAILCLI_CONFIG": str(config)})
    assert result.code == 78, result.stderr
    assert "tls_fingerprint" in result.stderr and "SHA256:<hex>" in result.stderr


def test_pin_forms_are_hex_with_or_without_colons_or_base64() -> None:
    digest = bytes(range(32))
    import base64

    colons = "SHA256:" + ":".join(f"{b:02X}" for b in digest)
    assert parse_fingerprint(colons) == digest
    assert parse_fingerprint(colons.lower()) == digest
    assert parse_fingerprint("sha256:" + digest.hex()) == digest
    assert parse_fingerprint("SHA256:" + base64.b64encode(digest).decode().rstrip("=")) == digest


def test_check_prints_the_fingerprint_a_pin_takes(
    pinned_dovecot: Dovecot, pinned_certs: Certs
) -> None:
    account = _pop3(pinned_dovecot, "tls")
    pin = fingerprint(pinned_certs.cert_pem)
    result = Mailcli(account)("check", "pop3", "--json", "--tls-fingerprint", pin)
    assert result.code == 0, result.stderr
    assert pin in result.stdout
    table = Mailcli(account)("check", "pop3", "--tls-fingerprint", pin)
    assert "yes (pinned fingerprint)" in table.stdout, table.stdout
    untrusted = Mailcli(account)("check", "pop3")  # fails (77), yet shows the fingerprint
    assert untrusted.code == 77, untrusted.stderr
    assert pin in untrusted.stdout, untrusted.stdout


def test_sendmail_and_fetch_follow_the_account_pin(
    pinned_postfix: Postfix, pinned_dovecot: Dovecot, pinned_certs: Certs, tmp_path: Path
) -> None:
    """The commands that take no connection options get the pin from the account."""
    mailbox = make_mailbox(pinned_dovecot, "pin")
    pin = fingerprint(pinned_certs.cert_pem)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.a]\nfrom = "{mailbox.address}"\nuser = "{mailbox.user}"\n'
        f'[accounts.a.smtp]\nhost = "127.0.0.1"\nport = {pinned_postfix.submission_port}\n'
        f'tls_fingerprint = "{pin}"\n'
        f'[accounts.a.pop3]\nhost = "127.0.0.1"\nport = {pinned_dovecot.pop3s_port}\n'
        f'security = "tls"\ntls_fingerprint = "{pin}"\n'
    )
    env = {"MAILCLI_CONFIG": str(config), "MAILCLI_PASSWORD": mailbox.password}
    message = f"From: {mailbox.address}\nTo: {mailbox.address}\nSubject: pinned\n\nbody\n"
    sent = run_cli(["sendmail", "-i", mailbox.address], env=env, input=message)
    assert sent.code == 0, sent.stderr
    pinned_postfix.wait_for_delivery(mailbox.user)
    maildir = tmp_path / "Maildir"
    fetched = run_cli(["fetch", "--to", f"maildir:{maildir}"], env=env)
    assert fetched.code == 0, fetched.stderr
    assert len(list((maildir / "new").iterdir())) == 1


@pytest.mark.parametrize(
    ("host", "matches"),
    [
        ("mail.example.test", True),
        ("MAIL.Example.Test.", True),
        ("a.wild.test", True),
        ("b.a.wild.test", False),  # a * stands for one label only
        ("wild.test", False),
        ("192.0.2.7", True),
        ("2001:db8::1", True),
        ("192.0.2.8", False),
        ("other.test", False),
    ],
)
def test_the_host_name_rule_of_a_pinned_certificate(host: str, matches: bool) -> None:
    decoded = {
        "subject": ((("commonName", "other.test"),),),  # never the CN
        "subjectAltName": (
            ("DNS", "mail.example.test"),
            ("DNS", "*.wild.test"),
            ("DNS", "*.test"),
            ("IP Address", "192.0.2.7"),
            ("IP Address", "2001:DB8:0:0:0:0:0:1\n"),
        ),
    }
    assert name_matches(decoded, host) is matches
