"""`mailcli account import` of a fetchmailrc in the forms fetchmail's manual shows:
globals, noise words and punctuation, quoting, several users on one server, multidrop,
non-POP3 servers, LMTP, and its idfile as the fetch state."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mailcli.fetch.mailbox import Mailbox
from mailcli.fetch.state import UidState, default_state_dir
from tests.helpers import import_accounts as imported
from tests.helpers import not_imported as reported

RC = """\
# Configuration created by fetchmailconf
set postmaster "postmaster"
set no spambounce
set daemon 300
set logfile ~/fetchmail.log
poll pop.provider.net proto pop3
     user "jsmith", with password secret1, is "jsmith" here;
poll other.provider.net proto imap:
     user "John.Smith", with password "My^Hat", is "John.Smith" here;
poll mail.example.org with proto pop3 port 995 and options uidl
     user "ann" there with password "a \\"quoted\\" pw" is ann here options ssl
        sslcertck sslcertfile ~/ca.pem keep fetchall
        mda "/usr/bin/procmail -f %F" limit 100000 no rewrite frobnicate
     user "bob" there is bob alice here
skip lmtp.example.org proto pop3 user "carl" lmtp smtphost mx.example.org/2003
     smtpname carl@example.org
"""


def test_the_manuals_forms(tmp_path: Path, config_file: Path) -> None:
    home = str(tmp_path / "home")
    (tmp_path / "fetchmailrc").write_text(RC)
    result = imported(str(tmp_path / "fetchmailrc"))
    assert result.code == 0, result.stderr
    log = f"{home}/fetchmail.log"
    assert tomllib.loads(config_file.read_text())["accounts"] == {
        "pop.provider.net": {
            "log": log,
            "pop3": {"security": "starttls", "host": "pop.provider.net", "user": "jsmith"},
            "fetch": {"delete": True},  # fetchmail's default: nokeep
        },
        "mail.example.org-ann": {
            "log": log,
            "pop3": {
                "security": "tls",
                "host": "mail.example.org",
                "user": "ann",
                "port": 995,
                "cafile": f"{home}/ca.pem",
            },
            "fetch": {"delete": False, "to": "mda:/usr/bin/procmail -f %F"},
        },
        "lmtp.example.org": {
            "log": log,
            "pop3": {"security": "starttls", "host": "lmtp.example.org", "user": "carl"},
            "fetch": {
                "delete": True,
                "to": "lmtp:mx.example.org:2003",
                "lmtp_rcpt": "carl@example.org",
            },
        },
    }
    assert reported(result, tmp_path) == [
        "fetchmailrc:2: -: set postmaster: mailcli does not forward over SMTP",
        "fetchmailrc:4: -: set daemon: run mailcli fetch from cron or a systemd timer instead",
        "fetchmailrc:6: pop.provider.net: pop.provider.net: fetchmail forwards to an SMTP "
        "listener (smtphost, default localhost); mailcli stores into fetch.to (default "
        "~/Maildir): give maildir:, mbox:, mda: or lmtp:",
        "fetchmailrc:8: other.provider.net: proto imap: imap: only POP3 maps; no account imported",
        "fetchmailrc:12: mail.example.org-ann: fetchall: mailcli fetches only new mail "
        "(`mailcli fetch --all` for all)",
        "fetchmailrc:13: mail.example.org-ann: limit 100000: mailcli has no size above which "
        "mail stays unread",
        "fetchmailrc:13: mail.example.org-ann: frobnicate: not a fetchmail keyword",
        "fetchmailrc:14: mail.example.org-bob: bob: multidrop (several local names): mailcli "
        "fetches one user's mailbox; no account",
    ]
    assert "2 clear passwords left behind" in result.stderr


def test_the_idfile_becomes_the_fetch_state(tmp_path: Path, isolated_environment: Path) -> None:
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll pop.example.org proto pop3 user ann mda cat\n")
    (isolated_environment / ".fetchids").write_text(
        "ann@pop.example.org U1\nbob@pop.example.org B1\nann@pop.example.org U2\n"
    )
    result = imported("--with-state", str(rc))
    assert result.code == 0, result.stderr
    assert "pop.example.org: recorded 2 UIDs" in result.stderr
    state = UidState(default_state_dir(), Mailbox("pop.example.org", "ann", "pop.example.org"))
    assert state.load() == {"U1": None, "U2": None}
    (isolated_environment / ".fetchids").write_text("U3\n")
    broken = imported("--with-state", "--replace", str(rc))
    assert broken.code == 65 and ".fetchids:1: not a fetchmail idfile" in broken.stderr


def test_a_word_that_may_be_a_password_is_never_shown(tmp_path: Path, config_file: Path) -> None:
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll pop.example.org proto pop3 user ann passwd s3cr3t! mda cat\n")
    result = imported(str(rc))
    assert result.code == 0, result.stderr
    assert "s3cr3t" not in result.stderr + config_file.read_text()
    assert "pop.example.org: passwd: not a fetchmail keyword" in result.stderr
    assert "pop.example.org: (a word): not a fetchmail keyword" in result.stderr


def test_an_ipv6_lmtp_smtphost_is_bracketed(tmp_path: Path, config_file: Path) -> None:
    rc = tmp_path / "fetchmailrc"
    rc.write_text('poll pop.example.org proto pop3 user ann lmtp smtphost "::1/2003"\n')
    result = imported(str(rc))
    assert result.code == 0, result.stderr
    accounts = tomllib.loads(config_file.read_text())["accounts"]
    assert accounts["pop.example.org"]["fetch"]["to"] == "lmtp:[::1]:2003"
