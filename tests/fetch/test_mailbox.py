"""A mailbox is account + user + canonical host: every spelling of a host (and every
loopback name and address) is one host; the port is no part of it."""

from __future__ import annotations

import pytest

from mailcli.fetch.mailbox import canonical_host, mailbox_identity


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("127.0.0.1", "localhost"),
        ("127.1.2.3", "localhost"),
        ("LocalHost.", "localhost"),
        ("localhost.localdomain", "localhost"),
        ("ip6-localhost", "localhost"),
        ("::1", "localhost"),
        ("[::1]", "localhost"),
        ("::ffff:127.0.0.1", "localhost"),
        ("Mail.Example.ORG.", "mail.example.org"),
        ("[2001:DB8:0::1]", "2001:db8::1"),
    ],
)
def test_canonical_host(spelling: str, canonical: str) -> None:
    assert canonical_host(spelling) == canonical


def test_identity_is_account_user_host_not_port() -> None:
    assert mailbox_identity("a", "u", "127.0.0.1") == mailbox_identity("a", "u", "localhost")
    assert mailbox_identity("a", "u", "h") != mailbox_identity("b", "u", "h")
    assert mailbox_identity("a", "u", "h") != mailbox_identity("a", "v", "h")
    assert mailbox_identity("a b", "c", "h") != mailbox_identity("a", "b c", "h")
    assert mailbox_identity(None, "u", "h") != mailbox_identity("-", "u", "h")
