"""`mailcli account import` against the real msmtp and mpop: what they did with their
configuration, mailcli does with the imported one (same envelope; exactly the mail mpop
has not fetched yet), and the passwords they keep in the keyring come along."""

from __future__ import annotations

import json
import os
import subprocess
from email import message_from_bytes
from pathlib import Path

import keyring

from tests.helpers import MemoryKeyring, drop, message_ids, run_cli, run_process
from tests.servers import require
from tests.servers.accounts import Account
from tests.servers.accounts import numbered_message as message
from tests.servers.dovecot import Dovecot
from tests.servers.fixtures import Mailbox
from tests.servers.keyring_service import SecretService
from tests.servers.oldtools import make_maildir, run_tool, server_lines, shared_maildir, write_rc
from tests.servers.postfix import DOMAIN, Postfix


def envelope(path: Path) -> tuple[str | None, str | None]:
    """What Postfix's delivery recorded: (Return-Path, Delivered-To)."""
    fields = message_from_bytes(path.read_bytes())
    return fields["Return-Path"], fields["Delivered-To"]


def test_msmtp_and_mailcli_send_with_the_same_envelope(
    postfix: Postfix,
    smtp_account: Account,
    mailbox: Mailbox,
    isolated_environment: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    require("msmtp")
    recipient = mailbox.address
    rc = write_rc(
        isolated_environment / ".msmtprc",
        f"defaults\nlogfile ~/msmtp.log\n\naccount work\n{server_lines(smtp_account)}"
        f'password "{smtp_account.password}"\nfrom {mailbox.address}\n'
        f"domain client.{DOMAIN}\n\naccount default : work\n",
    )
    letter = message(1, sender=mailbox.address)
    run_tool(["msmtp", "-C", str(rc), recipient], os.environ, letter)
    sent_by_msmtp = postfix.wait_for_delivery(mailbox.user, 1)

    imported = run_cli(["account", "import", "--with-passwords"])
    assert imported.code == 0, imported.stderr
    assert "stored the password for" in imported.stderr
    key = f"{mailbox.user}@{smtp_account.host}"
    assert keyring.get_password("mailcli", key) == smtp_account.password
    sent = run_cli(["sendmail", recipient], input=message(2).decode())  # as msmtp is run
    assert sent.code == 0, sent.stderr
    both = postfix.wait_for_delivery(mailbox.user, 2)
    by_mailcli = [path for path in both if path not in sent_by_msmtp]
    assert (
        envelope(by_mailcli[0])
        == envelope(sent_by_msmtp[0])
        == (
            f"<{mailbox.address}>",
            recipient,
        )
    )
    for path in (by_mailcli[0], sent_by_msmtp[0]):  # the EHLO name came along
        assert str(message_from_bytes(path.read_bytes())["Received"]).startswith(
            f"from client.{DOMAIN} "
        )


def test_mailcli_fetches_exactly_what_mpop_did_not(
    dovecot: Dovecot, pop3_account: Account, mailbox: Mailbox, isolated_environment: Path
) -> None:
    require("mpop")
    inbox = make_maildir(isolated_environment / "Mail" / "inbox")
    write_rc(
        isolated_environment / ".config" / "mpop" / "config",
        f"defaults\nkeep on\n\naccount inbox\n{server_lines(pop3_account)}"
        f"passwordeval \"printf '%s\\n' '{pop3_account.password}'\"\n"
        f"delivery maildir ~/Mail/inbox\n",
    )
    drop(mailbox, range(4))
    run_tool(["mpop", "inbox"], os.environ)
    assert message_ids([p.read_bytes() for p in (inbox / "new").iterdir()]) == {
        f"<n{n}@example.test>": 1 for n in range(4)
    }
    drop(mailbox, range(4, 8))

    imported = run_cli(["account", "import", "--with-state"])
    assert imported.code == 0, imported.stderr
    assert "inbox: recorded 4 UIDs" in imported.stderr
    fetched = run_cli(["fetch", "--json"])
    assert fetched.code == 0, fetched.stderr
    assert json.loads(fetched.stdout)["fetched"] == 4
    every = [p.read_bytes() for sub in ("new", "cur") for p in (inbox / sub).iterdir()]
    assert message_ids(every) == {f"<n{n}@example.test>": 1 for n in range(8)}


def test_passwords_msmtp_and_mpop_keep_in_the_keyring_are_copied(
    secret_service: SecretService, tmp_path: Path
) -> None:
    require("secret-tool")
    env = secret_service.subprocess_env()
    home = Path(env["HOME"])
    stored = {("smtp", "ann"): "msmtp-secret", ("pop3", "bob"): "mpop-secret"}
    for (service, user), secret in stored.items():
        attributes = ["host", "mail.example.test", "service", service, "user", user]
        secret_tool(env, "store", "--label=old tool", *attributes, stdin=secret)
    msmtprc = write_rc(tmp_path / "msmtprc", "account a\nhost mail.example.test\nuser ann\n")
    mpoprc = write_rc(tmp_path / "mpoprc", "account b\nhost mail.example.test\nuser bob\n")
    argv = ["account", "import", "--with-passwords", str(msmtprc), str(mpoprc)]
    done = run_process(argv, env=env)
    assert done.returncode == 0, done.stderr
    for (_, user), secret in stored.items():  # mailcli's own entry, as `password set` writes
        key = f"{user}@mail.example.test"
        assert secret_tool(env, "lookup", "service", "mailcli", "username", key) == secret
    assert "secret" not in (home / ".config" / "mailcli" / "config.toml").read_text()


def secret_tool(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        ["secret-tool", *args], input=stdin.encode(), env=env, capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_mailcli_fetches_exactly_what_getmail_did_not(
    dovecot: Dovecot, pop3_account: Account, mailbox: Mailbox, isolated_environment: Path
) -> None:
    require("getmail")
    getmaildir = isolated_environment / ".config" / "getmail"
    with shared_maildir() as inbox:
        write_rc(
            getmaildir / "getmailrc",
            f"[retriever]\ntype = SimplePOP3Retriever\nserver = {dovecot.host}\n"
            f"port = {dovecot.pop3_port}\nusername = {mailbox.user}\n"
            f'password_command = ("/bin/echo", "{mailbox.password}")\n\n'
            f"[destination]\ntype = Maildir\npath = {inbox}/\nuser = nobody\n\n"
            "[options]\nread_all = false\ndelete = false\n",
        )
        drop(mailbox, range(4))
        run_tool(["getmail", "--getmaildir", str(getmaildir)], os.environ)
        drop(mailbox, range(4, 8))

        imported = run_cli(["account", "import", "--with-state"])
        assert imported.code == 0, imported.stderr
        assert "getmail: recorded 4 UIDs" in imported.stderr
        fetched = run_cli(["fetch", "--json"])  # in clear, as SimplePOP3Retriever
        assert fetched.code == 0, fetched.stderr
        assert json.loads(fetched.stdout)["fetched"] == 4
        every = [p.read_bytes() for sub in ("new", "cur") for p in (inbox / sub).iterdir()]
        assert message_ids(every) == {f"<n{n}@example.test>": 1 for n in range(8)}


def test_mailcli_fetches_exactly_what_fetchmail_did_not(
    dovecot: Dovecot,
    mailbox: Mailbox,
    isolated_environment: Path,
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    require("fetchmail")
    out = tmp_path / "delivered"
    out.mkdir()
    write_rc(  # its certificate check wants a name in the subject; mailcli checks SANs
        isolated_environment / ".fetchmailrc",
        f"set no bouncemail\npoll localhost with proto pop3 port {dovecot.pop3_port} uidl\n"
        f'  user "{mailbox.user}" there with password "{mailbox.password}" is root here\n'
        f"  no sslcertck sslcertfile {dovecot.certs.ca_pem}\n"
        f'  keep mda "cat > $(mktemp -p {out})"\n',
    )
    drop(mailbox, range(4))
    run_tool(["fetchmail", "--nodetach"], os.environ)
    drop(mailbox, range(4, 8))

    imported = run_cli(["account", "import", "--with-state", "--with-passwords"])
    assert imported.code == 0, imported.stderr
    assert "localhost: recorded 4 UIDs" in imported.stderr
    fetched = run_cli(["fetch", "--json"])  # the password from the keyring
    assert fetched.code == 0, fetched.stderr
    assert json.loads(fetched.stdout)["fetched"] == 4
    assert message_ids([p.read_bytes() for p in out.iterdir()]) == {
        f"<n{n}@example.test>": 1 for n in range(8)
    }
