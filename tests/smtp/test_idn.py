"""International domains: a non-ASCII domain goes as its A-label (IDNA 2008, UTS 46
non-transitional) in MAIL FROM, RCPT TO and the composed header, unless a non-ASCII
local part needs SMTPUTF8; a domain that does not convert is 65, before any connection.

The real Postfix here runs with `smtputf8_enable = no` and takes mail for the IDN
domain `bücher.example` (`xn--bcher-kva.example`, a virtual alias domain whose
`USER@` is Dovecot's `USER@example.test`), so what arrives shows what went on the
wire. aiosmtpd records exact envelopes for the mapping and the SMTPUTF8 cases."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Mailcli, run_cli
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix
from tests.servers.smtpd import AioSmtpd

IDN = "bücher.example"
A_LABEL = "xn--bcher-kva.example"
# Postfix without SMTPUTF8; the A-label domain is an alias of the test domain, local part
# kept (a regexp table inline: `$$` is a `$` once main.cf is read).
NO_SMTPUTF8 = {
    "smtputf8_enable": "no",
    "virtual_alias_domains": A_LABEL,
    "virtual_alias_maps": "regexp:{ {/^(.+)@xn--bcher-kva\\.example$$/ $${1}@example.test} }",
}


@pytest.fixture(scope="module")
def ascii_postfix(postfix: Postfix, dovecot: Dovecot) -> Iterator[Postfix]:
    # `postfix` only makes sure a Postfix can run here (or skips, or fails under CI).
    with Postfix(dovecot, settings=NO_SMTPUTF8) as server:
        yield server


def send(account: Account, *args: str) -> tuple[int, str, str]:
    result = Mailcli(account)("--trace", "send", "--subject", "idn", "--body", "x", *args)
    return result.code, result.stdout, result.stderr


def test_idn_recipient_and_sender_arrive_through_postfix_without_smtputf8(
    ascii_postfix: Postfix, mailbox: Mailbox
) -> None:
    account = Account.submission(ascii_postfix, mailbox.user, mailbox.password)
    to = f"Bob <{mailbox.user}@{IDN}>"
    code, _, trace = send(account, "--from", f"Ann <ann@{IDN}>", "--to", to)
    assert code == 0, trace
    (mail,) = [line for line in trace.splitlines() if line.startswith("~> mail ")]
    assert mail.startswith(f"~> mail FROM:<ann@{A_LABEL}> ") and "SMTPUTF8" not in mail
    assert f"~> rcpt TO:<{mailbox.user}@{A_LABEL}>" in trace.splitlines()
    (path,) = ascii_postfix.wait_for_delivery(mailbox.user)
    raw = path.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Return-Path"] == f"<ann@{A_LABEL}>"
    assert message["X-Original-To"] == f"{mailbox.user}@{A_LABEL}"
    # The composed header names the domain as it went in the envelope: all ASCII.
    assert message["From"] == f"Ann <ann@{A_LABEL}>"
    assert message["To"] == f"Bob <{mailbox.user}@{A_LABEL}>"
    assert raw.isascii()


def test_upper_case_u_label_is_folded_to_the_same_a_label(
    ascii_postfix: Postfix, mailbox: Mailbox
) -> None:
    account = Account.submission(ascii_postfix, mailbox.user, mailbox.password)
    code, _, trace = send(
        account, "--from", mailbox.address, "--to", f"{mailbox.user}@BÜCHER.Example"
    )
    assert code == 0, trace
    assert f"~> rcpt TO:<{mailbox.user}@{A_LABEL}>" in trace
    assert len(ascii_postfix.wait_for_delivery(mailbox.user)) == 1


def test_sendmail_converts_the_envelope_and_leaves_the_header_as_given(
    ascii_postfix: Postfix, mailbox: Mailbox, config_file: Path
) -> None:
    config_file.write_text(
        f'[accounts.main]\nfrom = "ann@{IDN}"\n'
        f'[accounts.main.smtp]\nhost = "127.0.0.1"\nport = {ascii_postfix.smtp_port}\n'
        'security = "none"\n'
    )
    raw = f"From: Ann <ann@{IDN}>\nTo: {mailbox.user}@{IDN}\nSubject: s\n\nbody\n"
    result = run_cli(["sendmail", "-t", "-i"], input=raw)
    assert result.code == 0, result.stderr
    (path,) = ascii_postfix.wait_for_delivery(mailbox.user)
    delivered = path.read_bytes()
    message = email.message_from_bytes(delivered, policy=email.policy.default)
    assert message["Return-Path"] == f"<ann@{A_LABEL}>"
    assert message["X-Original-To"] == f"{mailbox.user}@{A_LABEL}"
    # The caller's header bytes are not rewritten (as msmtp and Postfix's sendmail).
    assert f"\nTo: {mailbox.user}@{IDN}\n".encode() in delivered


Factory = Callable[..., AioSmtpd]


def test_sendmail_writes_the_from_field_it_adds_with_the_a_label(
    aiosmtpd_factory: Factory, config_file: Path
) -> None:
    """The caller's fields are theirs; the one mailcli adds is composed like send's."""
    server = aiosmtpd_factory(smtputf8=False)
    config_file.write_text(
        f'[accounts.main]\nfrom = "Ann <ann@{IDN}>"\n'
        f'[accounts.main.smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
        'security = "none"\n'
    )
    result = run_cli(["sendmail", f"bob@{IDN}"], input="Subject: s\n\nbody\n")
    assert result.code == 0, result.stderr
    (received,) = server.received
    assert (received.envelope_from, received.rcpt_tos) == (f"ann@{A_LABEL}", (f"bob@{A_LABEL}",))
    assert received.data.startswith(f"From: Ann <ann@{A_LABEL}>\r\n".encode())
    assert received.data.isascii()


def plain(server: AioSmtpd) -> Account:
    return Account.smtpd(server, security="none")


def test_ready_message_gets_an_a_label_envelope_and_keeps_its_header(
    aiosmtpd_factory: Factory, tmp_path: Path
) -> None:
    server = aiosmtpd_factory(smtputf8=False)
    ready = tmp_path / "ready.eml"
    ready.write_bytes(f"From: ann@{IDN}\nTo: Bob <bob@{IDN}>\nSubject: s\n\nbody\n".encode())
    result = Mailcli(plain(server))("send", "--message", str(ready))
    assert result.code == 0, result.stderr
    (received,) = server.received
    assert (received.envelope_from, received.rcpt_tos) == (f"ann@{A_LABEL}", (f"bob@{A_LABEL}",))
    assert f"\r\nTo: Bob <bob@{IDN}>\r\n".encode() in received.data  # the caller's bytes


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("BÜCHER.example", A_LABEL),  # case folded by UTS 46
        ("bücher\u3002example", A_LABEL),  # an ideographic full stop separates labels
        ("straße.example", "xn--strae-oqa.example"),  # ß kept (non-transitional)
        ("p\u0430ypal.example", "xn--pypal-4ve.example"),  # Cyrillic a (U+0430): not paypal
        ("xn--bcher-kva.example", A_LABEL),  # an A-label given stays as it is
    ],
    ids=["upper-case", "ideographic-stop", "sharp-s", "mixed-script", "a-label"],
)
def test_uts46_mapping_on_the_wire(aiosmtpd_factory: Factory, given: str, sent: str) -> None:
    server = aiosmtpd_factory(smtputf8=False)
    code, _, trace = send(plain(server), "--from", "a@example.test", "--to", f"bob@{given}")
    assert code == 0, trace
    (received,) = server.received
    assert received.rcpt_tos == (f"bob@{sent}",)
    assert [o for o in received.mail_options if not o.startswith("SIZE=")] == []  # all ASCII
    assert f"\r\nTo: bob@{sent}\r\n".encode() in received.data


def test_idn_only_goes_as_a_labels_even_when_smtputf8_is_offered(
    aiosmtpd_factory: Factory,
) -> None:
    """SMTPUTF8 is used only when a local part needs it: A-labels need nothing of the
    relays after this one."""
    server = aiosmtpd_factory(smtputf8=True)
    code, _, trace = send(plain(server), "--from", f"a@{IDN}", "--to", f"bob@{IDN}")
    assert code == 0, trace
    (received,) = server.received
    assert (received.envelope_from, received.rcpt_tos) == (f"a@{A_LABEL}", (f"bob@{A_LABEL}",))
    assert "SMTPUTF8" not in received.mail_options


def test_non_ascii_local_part_with_smtputf8_offered_is_sent_as_utf8(
    aiosmtpd_factory: Factory,
) -> None:
    server = aiosmtpd_factory(smtputf8=True)
    code, _, trace = send(plain(server), "--from", "a@example.test", "--to", f"üser@{IDN}")
    assert code == 0, trace
    (received,) = server.received
    assert "SMTPUTF8" in received.mail_options
    assert received.rcpt_tos == (f"üser@{IDN}",)  # as today: UTF-8, domain as given
    assert f"To: üser@{IDN}".encode() in received.data


def test_non_ascii_local_part_without_smtputf8_is_65(aiosmtpd_factory: Factory) -> None:
    server = aiosmtpd_factory(smtputf8=False)
    code, _, stderr = send(plain(server), "--from", "a@example.test", "--to", f"üser@{IDN}")
    assert code == 65
    assert "SMTPUTF8" in stderr
    assert server.received == []


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("bücher..example", "Empty Label"),
        ("ü" + "a" * 62 + ".example", "Label too long"),  # over 63 octets as an A-label
        ("\u2603.example", "not allowed"),  # a snowman: no symbols in IDNA 2008
        ("a\u05d0b\u00fc.example", "direction"),  # Hebrew and Latin in one label: Bidi rule
        ("ü\u200d.example", "Joiner"),  # ZWJ outside the context that permits it
        ("ü" * 300 + ".example", "too long"),
    ],
    ids=["empty-label", "long-label", "symbol", "bidi", "joiner", "long-name"],
)
@pytest.mark.parametrize("option", ["--to", "--from", "--rcpt", "--envelope-from"])
def test_a_domain_that_does_not_convert_is_65_before_connecting(
    aiosmtpd_factory: Factory, domain: str, reason: str, option: str
) -> None:
    server = aiosmtpd_factory(smtputf8=False)
    args = {"--from": "a@example.test", "--to": "b@example.test", option: f"x@{domain}"}
    code, stdout, stderr = send(plain(server), *(part for pair in args.items() for part in pair))
    assert code == 65, stderr
    lines = stderr.splitlines()
    (error,) = [line for line in lines if line.startswith("mailcli: error:")]
    assert "not a valid international domain name" in error and reason in error
    assert "Traceback" not in stderr and stdout == ""
    assert not any(line.startswith(("== connecting", "->", "~>")) for line in lines)
    assert server.received == []


@pytest.mark.parametrize("option", ["--to", "--reply-to"])
def test_a_domain_that_does_not_convert_is_65_even_with_smtputf8(
    aiosmtpd_factory: Factory, option: str
) -> None:
    server = aiosmtpd_factory(smtputf8=True)
    args = {"--from": "üser@example.test", "--to": "b@example.test", option: "x@b..ü"}
    code, _, stderr = send(plain(server), *(part for pair in args.items() for part in pair))
    assert code == 65
    assert "Empty Label" in stderr
    assert server.received == []


def test_idna_is_not_imported_for_ascii_addresses() -> None:
    from tests.helpers import imported_by

    argv = ["send", "--dry-run", "--from", "a@example.test", "--to", "b@example.test"]
    assert "idna" not in imported_by(argv, ["idna"])
    argv[-1] = f"b@{IDN}"
    assert "idna" in imported_by(argv, ["idna"])
