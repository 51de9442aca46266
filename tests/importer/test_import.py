"""`mailcli account import` on files in the forms msmtp's and mpop's manuals show: the
TOML it writes, the keys it reports, and what it refuses (with the line, never a
traceback)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import keyring
import pytest

from mailcli.importer.mpop import TABLE as MPOP_TABLE
from mailcli.importer.msmtp import TABLE as MSMTP_TABLE
from tests.helpers import MemoryKeyring
from tests.helpers import import_accounts as imported
from tests.helpers import not_imported as reported

# msmtp's manual's example, whole (its comments cut short).
MSMTP_MANUAL = """\
# Example for a user configuration file ~/.msmtprc
defaults
port 587
tls on
#tls_trust_file /etc/ssl/certs/ca-certificates.crt

# A freemail service
account freemail
host smtp.freemail.example
from joe_smith@freemail.example
auth on
user joe.smith
passwordeval gpg2 --no-tty -q -d ~/.msmtp-password.gpg

# A second mail address at the same freemail service
account freemail2 : freemail
from joey@freemail.example

# The SMTP server of your ISP
account isp
host mail.isp.example
from smithjoe@isp.example
auth on
user 12345

# Set a default account
account default : freemail
"""

MPOP_MANUAL = """\
# Example for a user configuration file ~/.mpoprc
defaults
tls on
delivery mbox ~/Mail/inbox
uidls_file ~/.local/share/%U_at_%H

account freemail
host pop.freemail.example
user joe.smith
passwordeval "gpg2 --no-tty -q -d ~/.mpop-password.gpg"

account isp
host mail.isp.example
auth user
user 12345
delivery mda "/usr/bin/procmail -f '%F' -d $USER"
"""


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def written(config_file: Path) -> dict[str, object]:
    return tomllib.loads(config_file.read_text())


def test_the_manuals_examples(tmp_path: Path, config_file: Path) -> None:
    home = str(tmp_path / "home")
    msmtprc = write(tmp_path, "msmtprc", MSMTP_MANUAL)
    mpoprc = write(tmp_path, "mpoprc", MPOP_MANUAL)
    result = imported(str(msmtprc), str(mpoprc))
    assert result.code == 0, result.stderr
    assert written(config_file) == {
        "default_account": "freemail",  # `account default : freemail`
        "accounts": {
            "freemail": {
                "from": "joe_smith@freemail.example",
                "password_command": "gpg2 --no-tty -q -d ~/.msmtp-password.gpg",
                "smtp": {
                    "host": "smtp.freemail.example",
                    "port": 587,
                    "security": "starttls",
                    "user": "joe.smith",
                },
                "pop3": {
                    "host": "pop.freemail.example",
                    "security": "starttls",
                    "user": "joe.smith",
                },
                "fetch": {"to": f"mbox:{home}/Mail/inbox", "delete": True, "received_header": True},
            },
            "freemail2": {
                "from": "joey@freemail.example",
                "password_command": "gpg2 --no-tty -q -d ~/.msmtp-password.gpg",
                "smtp": {
                    "host": "smtp.freemail.example",
                    "port": 587,
                    "security": "starttls",
                    "user": "joe.smith",
                },
            },
            "isp": {
                "from": "smithjoe@isp.example",
                "smtp": {
                    "host": "mail.isp.example",
                    "port": 587,
                    "security": "starttls",
                    "user": "12345",
                },
                "pop3": {
                    "host": "mail.isp.example",
                    "security": "starttls",
                    "auth": "user",
                    "user": "12345",
                },
                "fetch": {
                    "to": "mda:/usr/bin/procmail -f '%F' -d $USER",
                    "delete": True,
                    "received_header": True,
                },
            },
        },
    }
    # One password command per account: mpop's other one is named, not dropped silently.
    assert reported(result, tmp_path) == [
        "mpoprc:10: freemail: password_command: differs from the password_command an earlier "
        "file gave this account; kept that one"
    ]


PIN = ":".join(["AB:CD:EF:01:23:45:67:89"] * 4)
MSMTP_EVERY_KEY = f"""\
defaults
logfile ~/.msmtp.log
logfile_time_format %Y
syslog off
account all
host smtp.example.org
port 465
source_ip 192.0.2.1
proxy_host 127.0.0.1
proxy_port 9050
socket /run/smtp.sock
timeout 30
protocol smtp
domain client.example.org
maildomain example.org
auth scram-sha-256
user ann
password "  spaced secret "
ntlmdomain WORK
tls on
tls_starttls off
tls_trust_file ~/ca.pem
tls_crl_file ~/crl.pem
tls_fingerprint {PIN}
tls_key_file ~/key.pem
tls_cert_file ~/cert.pem
tls_certcheck on
tls_min_dh_prime_bits 2048
tls_priorities NORMAL
tls_host_override other.example.org
from *@example.org
allow_from_override on
dsn_notify failure,delay
dsn_return headers
set_from_header auto
set_date_header auto
remove_bcc_headers on
undisclosed_recipients off
aliases ~/.aliases
eval echo host evil.example
frobnicate 3
"""


def test_every_msmtp_key_is_mapped_or_reported(tmp_path: Path, config_file: Path) -> None:
    home = str(tmp_path / "home")
    result = imported(str(write(tmp_path, "msmtprc", MSMTP_EVERY_KEY)))
    assert result.code == 0, result.stderr
    account = written(config_file)["accounts"]["all"]  # type: ignore[index]
    assert account == {
        "log": f"{home}/.msmtp.log",
        "ehlo": "client.example.org",
        "domain": "example.org",
        "from": "*@example.org",
        "dsn_notify": "failure,delay",
        "dsn_return": "headers",
        "smtp": {
            "host": "smtp.example.org",
            "port": 465,
            "source_address": "192.0.2.1",
            "cafile": f"{home}/ca.pem",
            "tls_fingerprint": "SHA256:" + "abcdef0123456789" * 4,
            "client_key": f"{home}/key.pem",
            "client_cert": f"{home}/cert.pem",
            "security": "tls",
            "proxy": "socks5h://127.0.0.1:9050",
            "auth": "scram-sha-256",
            "user": "ann",
        },
    }
    left_out = {line.split(": ")[2] for line in reported(result, tmp_path)}
    assert left_out == {
        "logfile_time_format",
        "socket",
        "timeout",
        "ntlmdomain",
        "tls_crl_file",
        "tls_min_dh_prime_bits",
        "tls_priorities",
        "tls_host_override",
        "allow_from_override",
        "set_from_header",
        "set_date_header",
        "undisclosed_recipients",
        "aliases",
        "eval",
        "frobnicate",
    }
    assert "spaced secret" not in config_file.read_text()
    assert "1 clear passwords left behind" in result.stderr


MPOP_EVERY_KEY = """\
account all
host pop.example.org
port 995
tls on
tls_starttls off
pipelining auto
auth plain
user bob
passwordeval "pass show 'mail/bob' | head -n 1"
delivery maildir ~/Maildir
only_new on
keep on
killsize off
skipsize 10m
filter ~/bin/judge
received_header off
uidls_file ~/.mpop_uidls/%U_at_%H
"""


def test_every_mpop_key_is_mapped_or_reported(tmp_path: Path, config_file: Path) -> None:
    home = str(tmp_path / "home")
    result = imported(str(write(tmp_path, "mpoprc", MPOP_EVERY_KEY)))
    assert result.code == 0, result.stderr
    assert written(config_file)["accounts"] == {
        "all": {
            "password_command": "pass show 'mail/bob' | head -n 1",  # shell quoting intact
            "pop3": {
                "host": "pop.example.org",
                "port": 995,
                "security": "tls",
                "auth": "plain",
                "user": "bob",
            },
            "fetch": {
                "to": f"maildir:{home}/Maildir",
                "delete": False,
                "filter": "~/bin/judge",
                "received_header": False,
            },
        }
    }
    assert [line.split(": ")[2] for line in reported(result, tmp_path)] == [
        "pipelining",
        "skipsize",
    ]


def test_kill_size_and_mpops_defaults(tmp_path: Path, config_file: Path) -> None:
    rc = write(tmp_path, "mpoprc", "account a\nhost h.example\nkillsize 2k\n")
    assert imported(str(rc)).code == 0
    fetch = written(config_file)["accounts"]["a"]["fetch"]  # type: ignore[index]
    # mpop deletes what it fetched and adds a Received line unless told otherwise.
    assert fetch == {"delete": True, "received_header": True, "delete_larger_than": 2048}


def test_dry_run_prints_the_file_and_writes_nothing(tmp_path: Path, config_file: Path) -> None:
    result = imported("--dry-run", str(write(tmp_path, "msmtprc", MSMTP_MANUAL)))
    assert result.code == 0, result.stderr
    assert tomllib.loads(result.stdout)["default_account"] == "freemail"
    assert "would import accounts: freemail, freemail2, isp" in result.stderr
    assert not config_file.exists()
    as_json = imported("--dry-run", "--json", str(tmp_path / "msmtprc"))
    document = json.loads(as_json.stdout)
    assert (document["written"], document["accounts"]) == (False, ["freemail", "freemail2", "isp"])
    assert document["toml"] == result.stdout
    assert not config_file.exists()


def test_an_existing_account_is_kept_unless_replace(tmp_path: Path, config_file: Path) -> None:
    original = '# my accounts\n[accounts.isp] # hand-written\nfrom = "me@isp.example"\n'
    config_file.write_text(original)
    rc = write(tmp_path, "msmtprc", MSMTP_MANUAL)
    refused = imported(str(rc))
    assert refused.code == 78
    assert "account 'isp' already exists" in refused.stderr and "--replace" in refused.stderr
    assert config_file.read_text() == original  # nothing half-written
    replaced = imported("--replace", str(rc))
    assert replaced.code == 0, replaced.stderr
    text = config_file.read_text()
    assert text.startswith("# my accounts\n")  # the file's comments stay
    assert written(config_file)["accounts"]["isp"]["from"] == "smithjoe@isp.example"  # type: ignore[index]


def test_clear_passwords_go_to_mailclis_keyring_entry(
    tmp_path: Path, config_file: Path, memory_keyring: MemoryKeyring
) -> None:
    rc = write(tmp_path, "msmtprc", 'account a\nhost h.example\nuser ann\npassword "x y"\n')
    result = imported("--with-passwords", str(rc))
    assert result.code == 0, result.stderr
    assert keyring.get_password("mailcli", "ann@h.example") == "x y"  # as `password set`
    assert "x y" not in config_file.read_text()
    assert "left behind" not in result.stderr


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        ("hello world\n", 65, "rc:1: 'hello' is no msmtp or mpop command"),
        ("# fetchmail\npoll pop.example.org user 'ann\n", 65, "rc:2: a string without its"),
        ("account a\nhost h\n", 65, "cannot tell an msmtp file from an mpop one"),
        ("account\nhost h\nfrom a@b\n", 65, "rc:1: `account` without a name"),
        ("account a : nosuch\nhost h\nfrom a@b\n", 65, "rc:1: account 'a' inherits 'nosuch'"),
        ("account a\nfrom a@b\naccount a\n", 65, "rc:3: account 'a' was already defined"),
        (b"account a\nhost h\nfrom \xff@b\n", 65, "rc:3: not UTF-8 text"),
        (b"# x\n" * 2_700_000, 65, "larger than 1024 KiB"),
    ],
)
def test_a_file_that_is_no_account_configuration(
    tmp_path: Path, config_file: Path, content: str | bytes, status: int, message: str
) -> None:
    result = imported(str(write(tmp_path, "rc", content)))
    assert (result.code, result.stderr.count("\n")) == (status, 1 + ("hint" in result.stderr))
    assert message in result.stderr
    assert not config_file.exists()


def test_eval_is_never_run(tmp_path: Path, config_file: Path) -> None:
    marker = tmp_path / "ran"
    rc = write(tmp_path, "msmtprc", f"account a\nhost h.example\neval touch {marker}\n")
    result = imported(str(rc))
    assert result.code == 0, result.stderr
    assert not marker.exists()
    assert reported(result, tmp_path)[0].startswith("msmtprc:3: a: eval: not run by the import")


def test_no_file_to_import(config_file: Path) -> None:
    result = imported()
    assert result.code == 64 and "no msmtp, mpop, getmail or fetchmail file found" in result.stderr


# Every command of msmtp 1.8's and mpop 1.4's manuals (CONFIGURATION FILES).
MSMTP_COMMANDS = [
    "defaults",
    "account",
    "eval",
    "host",
    "port",
    "source_ip",
    "proxy_host",
    "proxy_port",
    "socket",
    "timeout",
    "protocol",
    "domain",
    "auth",
    "user",
    "password",
    "passwordeval",
    "ntlmdomain",
    "tls",
    "tls_trust_file",
    "tls_crl_file",
    "tls_fingerprint",
    "tls_key_file",
    "tls_cert_file",
    "tls_certcheck",
    "tls_starttls",
    "tls_priorities",
    "tls_host_override",
    "tls_min_dh_prime_bits",
    "from",
    "allow_from_override",
    "dsn_notify",
    "dsn_return",
    "set_from_header",
    "set_date_header",
    "remove_bcc_headers",
    "undisclosed_recipients",
    "logfile",
    "logfile_time_format",
    "syslog",
    "aliases",
    "auto_from",
    "maildomain",
]
MPOP_COMMANDS = [
    "defaults",
    "account",
    "eval",
    "host",
    "port",
    "source_ip",
    "proxy_host",
    "proxy_port",
    "socket",
    "timeout",
    "pipelining",
    "auth",
    "user",
    "password",
    "passwordeval",
    "ntlmdomain",
    "tls",
    "tls_starttls",
    "tls_trust_file",
    "tls_crl_file",
    "tls_fingerprint",
    "tls_key_file",
    "tls_cert_file",
    "tls_certcheck",
    "tls_priorities",
    "tls_host_override",
    "tls_min_dh_prime_bits",
    "delivery",
    "uidls_file",
    "only_new",
    "keep",
    "killsize",
    "skipsize",
    "filter",
    "received_header",
]


@pytest.mark.parametrize(
    ("table", "commands"), [(MSMTP_TABLE, MSMTP_COMMANDS), (MPOP_TABLE, MPOP_COMMANDS)]
)
def test_every_command_of_the_manual_has_a_row(
    table: dict[str, object], commands: list[str]
) -> None:
    """None falls through to "not a command of this format"."""
    assert set(commands) - set(table) == set()
