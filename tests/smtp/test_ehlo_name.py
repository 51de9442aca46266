"""The EHLO name: `--ehlo`, the account's `ehlo` key, and the default (the host's FQDN
when it has a dot, else the account's `domain`, else `localhost`), decided in one place
(`smtp.ehloname`) for send and check, shown by `--trace` and in check's report.

The real Postfix here refuses a name that is not fully qualified
(`reject_non_fqdn_helo_hostname`), as relays do; the name it took is the one in the
`Received:` field of the delivered message. The default rule is tested by giving the
function the host's FQDN and the account's domain, not by renaming this machine."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcli.errors import ExitStatus, UsageError
from mailcli.smtp.ehloname import choose_ehlo_name
from tests.helpers import Mailcli, Result
from tests.servers import NEEDS, require
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

STRICT_HELO = {
    "smtpd_helo_required": "yes",
    "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname",
}


@pytest.fixture(scope="module")
def strict_postfix(dovecot: Dovecot) -> Iterator[Postfix]:
    require(*NEEDS["postfix"], need_root=True)
    with Postfix(dovecot, settings=STRICT_HELO) as server:
        yield server


def send(postfix: Postfix, box: Mailbox, *args: str) -> Result:
    """`mailcli --trace send` to `box` through Postfix's port-25 listener (no AUTH)."""
    account = Account.submission(postfix, box.user, box.password, security="none")
    body = ("--from", "ann@example.test", "--to", box.address, "--body", "hi")
    return Mailcli(account)("--trace", "send", *body, *args)


def received_from(postfix: Postfix, box: Mailbox) -> str:
    """The name the delivered message's Received field says the client gave."""
    (path,) = postfix.wait_for_delivery(box.user)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    (received,) = message.get_all("Received") or []
    return str(received).split()[1]


def write_account(home: Path, keys: str) -> None:
    config = home / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[accounts.t]\n{keys}")


def test_a_bare_name_is_refused_and_ehlo_gives_a_qualified_one(
    strict_postfix: Postfix, mailbox: Mailbox
) -> None:
    refused = send(strict_postfix, mailbox, "--ehlo", "vm")
    assert refused.code != 0
    assert "Helo command rejected: need fully-qualified hostname" in refused.stderr
    result = send(strict_postfix, mailbox, "--ehlo", "mail.example.test")
    assert result.code == 0, result.stderr
    assert "== EHLO name mail.example.test (given by --ehlo or `ehlo`)" in result.stderr
    assert "-> ehlo mail.example.test" in result.stderr.splitlines()
    assert received_from(strict_postfix, mailbox) == "mail.example.test"


def test_the_account_key_names_it(
    strict_postfix: Postfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    write_account(isolated_environment, 'ehlo = "relay-client.example.test"\n')
    result = send(strict_postfix, mailbox)
    assert result.code == 0, result.stderr
    assert received_from(strict_postfix, mailbox) == "relay-client.example.test"


def test_an_address_literal_is_a_valid_name(strict_postfix: Postfix, mailbox: Mailbox) -> None:
    result = send(strict_postfix, mailbox, "--ehlo", "[127.0.0.1]")
    assert result.code == 0, result.stderr
    assert received_from(strict_postfix, mailbox) == "[127.0.0.1]"


def test_the_default_is_what_the_one_function_decides(
    strict_postfix: Postfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    """With the account's domain, this host's default passes a relay that wants a fully
    qualified name whatever the host is called (the old default, `gethostname()`, was
    `vm` here); the trace says which name and why."""
    write_account(isolated_environment, 'domain = "example.test"\n')
    expected = choose_ehlo_name(None, "example.test", socket.getfqdn)
    result = send(strict_postfix, mailbox)
    assert result.code == 0, result.stderr
    assert f"== EHLO name {expected.name} ({expected.reason})" in result.stderr
    assert received_from(strict_postfix, mailbox) == expected.name


def test_check_uses_the_same_name_and_reports_it(
    strict_postfix: Postfix, mailbox: Mailbox, isolated_environment: Path
) -> None:
    write_account(isolated_environment, 'ehlo = "checker.example.test"\n')
    account = Account.submission(strict_postfix, mailbox.user, mailbox.password, security="none")
    result = Mailcli(account)("--trace", "check", "smtp", "--json")
    assert result.code == 0, result.stderr
    assert "-> ehlo checker.example.test" in result.stderr.splitlines()
    report = json.loads(result.stdout)
    assert report["ehlo_name"] == "checker.example.test"
    (finding,) = [f for f in report["findings"] if f["id"] == "ehlo-name"]
    assert finding["summary"] == "EHLO name checker.example.test (given by --ehlo or `ehlo`)"


@pytest.mark.parametrize(
    ("fqdn", "domain", "name", "why"),
    [
        ("vm.example.org", "example.test", "vm.example.org", "the host's FQDN"),
        ("vm", "example.test", "example.test", "the account's domain"),
        ("vm", None, "localhost", "no FQDN"),
        ("localhost", None, "localhost", "no FQDN"),
        ("vm", "bücher.example", "localhost", "no FQDN"),  # not a valid name: skipped
    ],
)
def test_default_rule(fqdn: str, domain: str | None, name: str, why: str) -> None:
    chosen = choose_ehlo_name(None, domain, lambda: fqdn)
    assert chosen.name == name and chosen.reason.startswith(why)


def test_a_given_name_never_asks_the_host() -> None:
    def no_dns() -> str:
        raise AssertionError("getfqdn called although a name was given")

    assert choose_ehlo_name("[IPv6:2001:db8::1]", None, no_dns).name == "[IPv6:2001:db8::1]"


@pytest.mark.parametrize(
    "name",
    ["mail example.test", "bücher.example", "", "mail\x01.example", "a..b", "[192.0.2.300]", "-a"],
)
def test_invalid_names_are_usage_errors(name: str, strict_postfix: Postfix) -> None:
    with pytest.raises(UsageError):
        choose_ehlo_name(name, None, socket.getfqdn)
    account = Account(strict_postfix.host, strict_postfix.smtp_port, security="none")
    result = Mailcli(account)(
        "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x", "--ehlo", name
    )
    assert result.code == ExitStatus.USAGE
    (line,) = result.stderr.splitlines()
    assert line.startswith("mailcli: error: --ehlo ") and "cannot be an EHLO name" in line


def test_an_invalid_account_key_is_a_config_error(isolated_environment: Path) -> None:
    write_account(isolated_environment, 'ehlo = "two words"\n')
    result = Mailcli(Account("127.0.0.1", 9, security="none"))(
        "send", "--from", "a@example.test", "--to", "b@example.test", "--body", "x"
    )
    assert result.code == ExitStatus.CONFIG
    assert "accounts.t.ehlo" in result.stderr and "contains a space" in result.stderr
