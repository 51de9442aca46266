"""`mailcli account import` of getmail6 rc files: every key of its retriever, destination
and options mapped or reported, the retrievers that cannot map, its oldmail state, and
files that are not getmail's."""

from __future__ import annotations

import tomllib
from pathlib import Path

import keyring
import pytest

from mailcli.fetch.mailbox import Mailbox
from mailcli.fetch.state import UidState, default_state_dir
from tests.helpers import MemoryKeyring
from tests.helpers import import_accounts as imported
from tests.helpers import not_imported as reported

PIN = "ab" * 32
EVERY_KEY = f"""\
[retriever]
type = SimplePOP3SSLRetriever
server = pop.example.net
port = 1995
username = jeff
password = mail password
password_command = ("/usr/bin/pass", "show", "mail/jeff's")
use_apop = false
ca_certs = ~/ca.pem
certfile = ~/cert.pem
keyfile = ~/key.pem
ssl_fingerprints = ("{PIN}",)
ssl_version = TLSv1.2
ssl_ciphers = HIGH
ssl_cert_hostname = other.example.net
timeout = 30
delete_dup_msgids = true
getmaildir = ~/.getmail

[destination]
type = MDA_external
path = /usr/bin/procmail
arguments = ("-f", "%(sender)", "-d", "jeff")
user = jeff

[options]
verbose = 0
read_all = false
delete = true
delete_after = 30
delete_bigger_than = 1000000
max_message_size = 0
max_messages_per_session = 10
max_bytes_per_session = 0
delivered_to = false
received = false
message_log = ~/.getmail/log
message_log_verbose = true
message_log_syslog = false
to_oldmail_on_each_mail = true
use_netrc = false
frobnicate = 1

[filter-spam]
type = Filter_external
path = /usr/bin/spamassassin
"""


def rc(directory: Path, text: str, name: str = "getmailrc-work") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_every_key_is_mapped_or_reported(
    tmp_path: Path, config_file: Path, memory_keyring: MemoryKeyring
) -> None:
    home = str(tmp_path / "home")
    result = imported("--with-passwords", str(rc(tmp_path, EVERY_KEY)))
    assert result.code == 0, result.stderr
    assert tomllib.loads(config_file.read_text())["accounts"] == {
        "work": {  # named after the file: getmailrc-work
            "password_command": "/usr/bin/pass show 'mail/jeff'\"'\"'s'",  # no shell in getmail
            "log": f"{home}/.getmail/log",
            "pop3": {
                "security": "tls",
                "host": "pop.example.net",
                "port": 1995,
                "user": "jeff",
                "cafile": f"{home}/ca.pem",
                "client_cert": f"{home}/cert.pem",
                "client_key": f"{home}/key.pem",
                "tls_fingerprint": [f"SHA256:{PIN}"],
            },
            "fetch": {
                "to": "mda:/usr/bin/procmail -f '%F' -d jeff",
                "delete": True,
                "delete_after": 30,
                "delete_larger_than": 1000000,
                "received_header": False,
            },
        }
    }
    assert keyring.get_password("mailcli", "jeff@pop.example.net") == "mail password"
    left_out = [line.split(": ")[2] for line in reported(result, tmp_path)]
    assert left_out == [
        "retriever.ssl_version",
        "retriever.ssl_ciphers",
        "retriever.ssl_cert_hostname",
        "retriever.timeout",
        "retriever.delete_dup_msgids",
        "retriever.getmaildir",
        "options.verbose",
        "options.max_messages_per_session",
        "options.message_log_verbose",
        "options.frobnicate",
        "destination.user",
        "filter-spam.type",
    ]
    assert reported(result, tmp_path)[0].startswith(
        "getmailrc-work:13: work: retriever.ssl_version"
    )


@pytest.mark.parametrize(
    "retriever", ["SimpleIMAPSSLRetriever", "MultidropPOP3Retriever", "BrokenUIDLPOP3Retriever"]
)
def test_a_retriever_mailcli_cannot_be_gives_no_account(
    tmp_path: Path, config_file: Path, retriever: str
) -> None:
    text = f"[retriever]\ntype = {retriever}\nserver = s.example\nusername = u\n"
    result = imported("--dry-run", str(rc(tmp_path, text, "getmailrc")))
    assert result.code == 0, result.stderr
    assert "would import accounts: none" in result.stderr
    assert reported(result, tmp_path) == [
        f"getmailrc:2: getmail: retriever.type: {retriever}: only SimplePOP3Retriever and "
        "SimplePOP3SSLRetriever map (POP3, one user); no account imported"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retriever]\ntype = SimplePOP3Retriever\nno equals sign here\n", "rc:3: not a getmail"),
        ("[retriever]\ntype = x\n[retriever]\ntype = y\nserver\n", "rc:5: not a getmail"),
    ],
)
def test_a_broken_rc_file_is_65_with_the_line(
    tmp_path: Path, config_file: Path, text: str, message: str
) -> None:
    result = imported("--from", "getmail", str(rc(tmp_path, text, "rc")))
    assert (result.code, result.stderr.count("\n")) == (65, 1), result.stderr
    assert message in result.stderr
    assert not config_file.exists()


def test_the_oldmail_file_becomes_the_fetch_state(tmp_path: Path, config_file: Path) -> None:
    text = "[retriever]\ntype = SimplePOP3Retriever\nserver = pop.example.net\nusername = jeff\n"
    path = rc(tmp_path, text, "getmailrc")
    (tmp_path / "oldmail-pop.example.net-110-jeff").write_bytes(b"U1\x001796640521\nU2\x001\n")
    result = imported("--with-state", str(path))
    assert result.code == 0, result.stderr
    assert "getmail: recorded 2 UIDs" in result.stderr
    state = UidState(default_state_dir(), Mailbox("getmail", "jeff", "pop.example.net"))
    assert state.load() == {"U1": None, "U2": None}
    (tmp_path / "oldmail-pop.example.net-110-jeff").write_bytes(b"U1 1796640521\n")
    broken = imported("--with-state", "--replace", str(path))
    assert broken.code == 65 and "-jeff:1: not a getmail oldmail file" in broken.stderr


LMTP_RC = """\
[retriever]
type = SimplePOP3Retriever
server = pop.example.net
username = jeff

[destination]
type = MDA_lmtp
host = {host}
port = {port}
"""


@pytest.mark.parametrize(
    ("host", "port", "target"),
    [("::1", "2003", "lmtp:[::1]:2003"), ("lmtp.example.net", "24", "lmtp:lmtp.example.net:24")],
)
def test_an_lmtp_destination_names_host_and_port(
    tmp_path: Path, config_file: Path, host: str, port: str, target: str
) -> None:
    result = imported(str(rc(tmp_path, LMTP_RC.format(host=host, port=port))))
    assert result.code == 0, result.stderr
    assert tomllib.loads(config_file.read_text())["accounts"]["work"]["fetch"]["to"] == target


def test_an_lmtp_port_that_is_no_port_is_reported_not_written(
    tmp_path: Path, config_file: Path
) -> None:
    result = imported(str(rc(tmp_path, LMTP_RC.format(host="lmtp.example.net", port="lmtp"))))
    assert result.code == 0, result.stderr
    fetch = tomllib.loads(config_file.read_text())["accounts"]["work"].get("fetch", {})
    assert "to" not in fetch, fetch
    assert any("destination.port" in line for line in reported(result, tmp_path)), result.stderr
