"""RFC 5322 groups in `send --to/--cc/--bcc/--reply-to`: the empty group
(`undisclosed-recipients:;`) is a valid header naming nobody, a group's members are
recipients, the group stays a group in its field, and Bcc (groups included) is never
transmitted. Delivered through the real Postfix; composed bytes checked directly."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailcli.errors import DataError
from mailcli.smtp.compose import ComposeRequest, compose
from tests.helpers import Mailcli, Result
from tests.servers.accounts import Account
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix


def submit(postfix: Postfix, box: Mailbox, *args: str) -> Result:
    account = Account.submission(postfix, box.user, box.password)
    return Mailcli(account)("--trace", "send", "--from", box.address, "--body", "x", *args)


def delivered(postfix: Postfix, user: str) -> tuple[EmailMessage, bytes]:
    (path,) = postfix.wait_for_delivery(user)
    raw = path.read_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default), raw


def rcpt_lines(trace: str) -> list[str]:
    return [line for line in trace.splitlines() if line.startswith("~> rcpt ")]


def test_undisclosed_recipients_header_with_the_recipients_in_bcc(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    hidden = f"{mailbox.user}h"
    dovecot.add_user(hidden, "pw")
    result = submit(
        postfix, mailbox, "--to", "undisclosed-recipients:;", "--bcc", f"{hidden}@example.test"
    )
    assert result.code == 0, result.stderr
    assert rcpt_lines(result.stderr) == [f"~> rcpt TO:<{hidden}@example.test>"]
    message, raw = delivered(postfix, hidden)
    assert b"\nTo: undisclosed-recipients:;\n" in raw
    assert message["To"] == "undisclosed-recipients:;"
    assert "Bcc" not in message


def test_group_members_are_recipients_and_the_group_stays_in_the_header(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    first, second, third = (f"{mailbox.user}{n}" for n in "abc")
    for user in (first, second, third):
        dovecot.add_user(user, "pw")
    team = f"team: {first}@example.test, Second <{second}@example.test>;"
    result = submit(postfix, mailbox, "--to", team, "--cc", f"{third}@example.test")
    assert result.code == 0, result.stderr
    assert len(rcpt_lines(result.stderr)) == 3
    for user in (first, second, third):
        message, raw = delivered(postfix, user)
        assert message["To"].groups[0].display_name == "team"
        assert [a.username for a in message["To"].addresses] == [first, second]
        assert message["Cc"] == f"{third}@example.test"
        assert f"To: team: {first}@example.test, Second <{second}@example.test>;".encode() in raw


def test_a_group_in_bcc_reaches_its_members_and_nobody_sees_it(
    postfix: Postfix, dovecot: Dovecot, mailbox: Mailbox
) -> None:
    hidden = [f"{mailbox.user}x", f"{mailbox.user}y"]
    for user in hidden:
        dovecot.add_user(user, "pw")
    group = "secret: " + ", ".join(f"{user}@example.test" for user in hidden) + ";"
    result = submit(postfix, mailbox, "--to", mailbox.address, "--bcc", group)
    assert result.code == 0, result.stderr
    for user in [mailbox.user, *hidden]:
        message, raw = delivered(postfix, user)
        assert "Bcc" not in message
        assert b"secret" not in raw.partition(b"\nSubject")[0].split(b"\nFrom:", 1)[-1]
        assert message["To"] == mailbox.address


def compose_to(*to: str, **fields: list[str]) -> tuple[tuple[str, ...], bytes]:
    out = compose(ComposeRequest(from_addr="a@example.org", to=list(to), **fields))  # type: ignore[arg-type]
    return out.envelope.recipients, out.data


B, C = "b@example.org", "c@example.org"
# (--to as given, the To field composed when not the same, the recipients)
GROUP_SYNTAX = {
    "empty-then-mailbox": (f"undisclosed-recipients:;, {B}", None, [B]),
    "mailbox-then-empty": (f"{B}, empty:;", None, [B]),
    "quoted-name": (f'"Dept: Sales" : {B}, {C};', f'"Dept: Sales": {B}, {C};', [B, C]),
    "named-member": (f"t: Bob <{B}>;, {C}", None, [B, C]),
    "same-member-twice": (f"t: {B};, u: {B};", None, [B]),
    "specials-quoted-or-in-comments": (
        f't: "x;y" <{B}>, (note: ;) {C};',
        f't: "x;y" <{B}>, "note: ;" <{C}>;',  # a comment names the address (getaddresses)
        [B, C],
    ),
}


@pytest.mark.parametrize(
    ("given", "header", "recipients"), GROUP_SYNTAX.values(), ids=GROUP_SYNTAX.keys()
)
def test_group_syntax_in_address_options(
    given: str, header: str | None, recipients: list[str]
) -> None:
    sent, data = compose_to(given)
    assert list(sent) == recipients
    assert f"\r\nTo: {header or given}\r\n".encode() in data


def test_reply_to_may_be_a_group_and_names_no_recipient() -> None:
    out = compose(
        ComposeRequest(from_addr="a@example.org", to=["b@example.org"], reply_to="list:;")
    )
    assert out.envelope.recipients == ("b@example.org",)
    assert b"\r\nReply-To: list:;\r\n" in out.data


def test_only_empty_groups_is_no_recipients_65() -> None:
    with pytest.raises(DataError, match="no recipients") as caught:
        compose_to("undisclosed-recipients:;")
    assert caught.value.exit_status == 65


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--to", "team: b@example.org", "does not end with ';'"),
        ("--to", "outer: inner: b@example.org;;", "cannot parse"),
        ("--to", "b@example.org;", "cannot parse"),
        ("--to", ": b@example.org;", "cannot parse"),
        ("--to", "b@example.org team: c@example.org;", "cannot parse"),
        ("--to", "team: not an address;", "cannot parse"),
        ("--cc", "team: b@example.org;junk", "cannot parse"),
        ("--from", "senders: a@example.org;", "a group (name: ...;) cannot be used here"),
    ],
)
def test_malformed_groups_are_65(option: str, value: str, message: str) -> None:
    from tests.helpers import run_cli

    base = {"--from": "a@example.org", "--to": "b@example.org", option: value}
    args = [part for pair in base.items() for part in pair]
    result = run_cli(["send", "--dry-run", *args, "--body", "x"])
    assert result.code == 65, result.stderr
    (line,) = result.stderr.splitlines()[:1]
    assert line.startswith(f"mailcli: error: {option}") and message in line


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='ab@.:;,"()<>[]\\ \tü', max_size=40))
@example('t: "a;" <a@b>, (x: ;) b@a;, a@b')
@example('"\\": a@b;')
def test_any_address_list_composes_or_is_65(value: str) -> None:
    """The group syntax around quotes, comments, brackets and escapes: a message or a
    DataError (65), never another exception."""
    try:
        compose_to(value)
    except DataError as error:
        assert error.exit_status == 65
