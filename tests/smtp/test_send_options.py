"""`send`'s composing options arrive as one `ComposeOptions`: a ready message
(`--message`) refuses every one of them by its flag, and none is taken for another."""

from __future__ import annotations

import pytest

from mailcli.smtp.compose import ComposeOptions
from tests.helpers import run_cli

# Each composing option with a value, and the flag the refusal names.
COMPOSING = [
    (["--from", "a@example.test"], "--from"),
    (["--to", "b@example.test"], "--to"),
    (["--cc", "b@example.test"], "--cc"),
    (["--bcc", "b@example.test"], "--bcc"),
    (["--subject", "s"], "--subject"),
    (["--body", "text"], "--body"),
    (["--body-file", "body.txt"], "--body-file"),
    (["--html", "page.html"], "--html"),
    (["--attach", "file.bin"], "--attach"),
    (["--header", "X-A: b"], "--header"),
    (["--reply-to", "r@example.test"], "--reply-to"),
]


@pytest.mark.parametrize(("option", "flag"), COMPOSING)
def test_a_ready_message_refuses_each_composing_option(option: list[str], flag: str) -> None:
    done = run_cli(["send", "--message", "-", "--dry-run", *option], input="Subject: x\n\nx\n")
    assert done.code == 64, done.stderr
    assert done.stderr == (
        f"mailcli: error: --message sends a ready message; it cannot be combined with {flag}\n"
    )


def test_the_refusal_names_every_option_given_in_order() -> None:
    args = ["--reply-to", "r@example.test", "--from", "a@example.test", "--body-file", "b"]
    done = run_cli(["send", "--message", "-", *args], input="x\n")
    assert done.code == 64
    assert done.stderr.endswith("combined with --from, --body-file, --reply-to\n")


def test_the_record_holds_each_option_under_its_own_field() -> None:
    """Every field is one option: the flags `given` names are exactly the CLI's."""
    one = ("x",)
    options = ComposeOptions("a", one, one, one, "s", "t", "f", "h", one, one, "r")
    assert options.given() == [flag for _, flag in COMPOSING]
    assert ComposeOptions().given() == []


def test_an_empty_value_is_not_given() -> None:
    done = run_cli(
        ["send", "--message", "-", "--subject", "", "--rcpt", "b@example.test", "--dry-run"],
        input="From: a@example.test\n\nx\n",
    )
    assert done.code == 0, done.stderr
    assert "RCPT TO:<b@example.test>" in done.stdout
