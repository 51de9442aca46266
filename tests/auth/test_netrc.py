"""~/.netrc (or $NETRC) in the credential chain: after the keyring, before the prompt.

The parser against hostile files (quotes, macros, comments, missing fields, a symlink,
a huge file, non-UTF-8), the refusals (each one line, never quoting the file), and the
real Postfix taking a password that only the netrc holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mailcli.auth.credentials import get_password
from mailcli.auth.netrc import NetrcEntry, find, lookup, parse
from mailcli.errors import CredentialsError, ExitStatus
from tests.helpers import MemoryKeyring, run_cli
from tests.servers.accounts import Account
from tests.servers.fixtures import Mailbox
from tests.servers.postfix import Postfix

SECRET = "s3cr3t-netrc"


def write_netrc(path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(mode)
    return path


def answer(path: Path, host: str = "h.example", user: str = "ann") -> str | None:
    return lookup(host, user, {"NETRC": str(path)}).password


def refusal(path: Path) -> str:
    with pytest.raises(CredentialsError) as caught:
        lookup("h.example", "ann", {"NETRC": str(path)})
    message = caught.value.message
    assert "\n" not in message and SECRET not in message
    return message


# -- the grammar -----------------------------------------------------------------------


def test_machine_login_password_across_lines_and_tabs() -> None:
    entries = parse(f"machine h.example\n\tlogin ann\n  password {SECRET}\n")
    assert find(entries, "H.Example", "ann") == NetrcEntry("h.example", "ann", SECRET)


def test_quoted_words_with_escapes_and_spaces() -> None:
    text = 'machine h.example login "ann b" password "a \\"quoted\\" \\\\ pass\\tword"\n'
    (entry,) = parse(text)
    assert (entry.login, entry.password) == ("ann b", 'a "quoted" \\ pass\tword')


def test_an_unclosed_quote_names_its_line_and_not_the_word() -> None:
    with pytest.raises(CredentialsError) as caught:
        parse(f'machine h.example\nlogin ann password "{SECRET}\nmachine x\n', "NRC")
    assert caught.value.message == "NRC: line 2: a quoted word is not closed on its line"


def test_a_macro_body_is_skipped_up_to_the_empty_line() -> None:
    text = (
        "macdef init\nmachine h.example login ann password from-macro\ncd /\n\n"
        f"machine h.example login ann password {SECRET}\n"
    )
    assert find(parse(text), "h.example", "ann") == NetrcEntry("h.example", "ann", SECRET)


def test_comments_where_a_keyword_is_expected_and_a_password_beginning_with_hash() -> None:
    text = (
        "# machine h.example login ann password commented\n"
        "machine h.example login ann # a remark, not a keyword\n"
        "password #hash-first\n"
    )
    assert find(parse(text), "h.example", "ann") == NetrcEntry("h.example", "ann", "#hash-first")


def test_missing_fields() -> None:
    # A login before any machine is ignored (curl), an entry without a password gives
    # nothing, a keyword at the end of the file without its value is an error.
    entries = parse("login ann password stray\nmachine h.example login ann\n")
    assert entries == [NetrcEntry("h.example", "ann", None)]
    with pytest.raises(CredentialsError, match=r"^F: line 3: `password` without a value$"):
        parse("machine h.example\nlogin ann\npassword\n", "F")
    assert parse("account x unknownword machine h.example") == [NetrcEntry("h.example")]


def test_the_login_must_match_and_default_is_the_last_resort() -> None:
    entries = parse(
        "machine h.example login bob password bob-pw\n"
        "default login ann password default-pw\n"
        "machine h.example login ann password ann-pw\n"
    )
    assert find(entries, "h.example", "ann") == NetrcEntry("h.example", "ann", "ann-pw")
    assert find(entries, "other.example", "ann") == NetrcEntry(None, "ann", "default-pw")
    assert find(entries, "other.example", "carl") is None


def test_entries_never_show_the_password() -> None:
    (entry,) = parse(f"machine h login ann password {SECRET}")
    assert SECRET not in repr(entry)
    assert SECRET not in repr(lookup("h", "ann", {"NETRC": "/nonexistent"}))


# -- the file ---------------------------------------------------------------------------


def test_a_missing_file_is_no_file(tmp_path: Path) -> None:
    assert lookup("h", "ann", {"NETRC": str(tmp_path / "none")}).detail.startswith("no file ")


def test_group_or_world_readable_is_refused(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "netrc", f"machine h.example login ann password {SECRET}\n")
    for mode in (0o644, 0o640, 0o604, 0o620):
        path.chmod(mode)
        assert refusal(path) == (
            f"{path}: refused: group or others may read or write the netrc file "
            f"(mode {mode:04o}); run `chmod 600 {path}`"
        )
    path.chmod(0o400)
    assert answer(path) == SECRET


def test_a_symlink_is_followed_and_its_target_checked(tmp_path: Path) -> None:
    target = write_netrc(tmp_path / "real", f"machine h.example login ann password {SECRET}\n")
    link = tmp_path / "netrc"
    link.symlink_to(target)
    assert answer(link) == SECRET
    target.chmod(0o644)
    assert "(mode 0644)" in refusal(link)
    link.unlink()
    link.symlink_to("/dev/zero")
    assert refusal(link) == f"{link}: refused: the netrc file is not a regular file"
    link.unlink()
    link.symlink_to(link)  # a loop
    assert refusal(link).startswith(f"{link}: cannot read the netrc file: ")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "netrc"
    os.mkfifo(fifo, 0o600)  # opening it for reading would block until a writer came
    assert refusal(fifo) == f"{fifo}: refused: the netrc file is not a regular file"


def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "netrc", f"machine h.example login ann password {SECRET}\n")
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(path, 65534, -1)
    assert refusal(path).startswith(f"{path}: refused: the netrc file belongs to uid 65534")


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "netrc", "")
    with path.open("r+b") as file:
        file.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    assert refusal(path) == f"{path}: refused: the netrc file is larger than 1 MiB"


def test_non_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "netrc", b"machine h.example\nlogin ann password \xff\xfe\n")
    assert refusal(path) == f"{path}: line 2: the netrc file is not UTF-8"


# -- the chain ---------------------------------------------------------------------------


def test_the_chain_asks_the_keyring_first_then_the_netrc(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    path = write_netrc(tmp_path / "netrc", f"machine h.example login ann password {SECRET}\n")
    environ = {"NETRC": str(path)}
    found = get_password("ann@h.example", password_command=None, environ=environ)
    assert (found.value, found.source) == (SECRET, "netrc")
    memory_keyring.set_password("mailcli", "ann@h.example", "from-keyring")
    found = get_password("ann@h.example", password_command=None, environ=environ)
    assert found.source == "keyring"


def test_home_netrc_without_the_variable(isolated_environment: Path) -> None:
    write_netrc(isolated_environment / ".netrc", f"machine h.example login ann password {SECRET}")
    assert get_password("ann@h.example", password_command=None, environ={}).source == "netrc"


# -- against the real Postfix ------------------------------------------------------------


def send_with_netrc(account: Account, box: Mailbox, netrc: Path) -> tuple[int, str]:
    done = run_cli(
        ["send", "--from", box.address, "--to", box.address, "--body", "netrc", *account.args()],
        env={"NETRC": str(netrc), "MAILCLI_PASSWORD": None},
    )
    return done.code, done.stderr


def test_send_with_the_password_only_in_netrc(
    tmp_path: Path, postfix: Postfix, smtp_account: Account, mailbox: Mailbox
) -> None:
    netrc = write_netrc(
        tmp_path / "netrc",
        f"machine {smtp_account.host}\n  login {mailbox.user}\n  password {mailbox.password}\n",
    )
    assert send_with_netrc(smtp_account, mailbox, netrc) == (0, "")
    assert len(postfix.wait_for_delivery(mailbox.user)) == 1
    postfix.wait_for_log(f"sasl_username={mailbox.user}\n")


def test_a_readable_netrc_stops_send_with_78(
    tmp_path: Path, smtp_account: Account, mailbox: Mailbox
) -> None:
    netrc = write_netrc(
        tmp_path / "netrc",
        f"machine {smtp_account.host} login {mailbox.user} password {mailbox.password}\n",
        0o644,
    )
    code, stderr = send_with_netrc(smtp_account, mailbox, netrc)
    assert code == ExitStatus.CONFIG
    assert stderr == (
        f"mailcli: error: {netrc}: refused: group or others may read or write the netrc "
        f"file (mode 0644); run `chmod 600 {netrc}`\n"
    )
    assert mailbox.password not in stderr


def test_password_where_names_the_netrc(tmp_path: Path) -> None:
    netrc = write_netrc(tmp_path / "netrc", f"machine h.example login ann password {SECRET}\n")
    done = run_cli(["password", "where", "ann@h.example", "--json"], env={"NETRC": str(netrc)})
    assert done.code == 0, done.stderr
    (login,) = json.loads(done.stdout)["logins"]
    steps = {step["name"]: step for step in login["sources"]}
    assert [step["name"] for step in login["sources"]] == [
        "MAILCLI_PASSWORD",
        "password_command",
        "keyring",
        "netrc",
        "prompt",
    ]
    assert login["answer"] == "netrc"
    assert steps["netrc"] == {
        "name": "netrc",
        "available": True,
        "detail": f"machine 'h.example' login 'ann' in {netrc}",
    }
    netrc.chmod(0o644)
    done = run_cli(["password", "where", "ann@h.example", "--json"], env={"NETRC": str(netrc)})
    (login,) = json.loads(done.stdout)["logins"]
    netrc_step = login["sources"][3]
    assert (login["answer"], netrc_step["available"]) == (None, False)
    assert netrc_step["detail"].startswith(f"{netrc}: refused: group or others may read")
    assert SECRET not in done.stdout
