"""A plain run pays nothing for the options it was not given.

`mailcli stat` and `mailcli send` with only a host, a user and STARTTLS, against the real
Dovecot and Postfix, must not import what serves options left unset: the IP address
parser of --source-address (a click callback runs for an option even when it is absent)
and the DSN grammar of --dsn-notify, --dsn-return and --envid. Each costs every run its
import, and bench/floors measures these very commands against their floors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.servers import Dovecot, Postfix
from tests.servers.accounts import Account
from tests.servers.fixtures import Mailbox


def run_importing(argv: list[str], password: str, watched: list[str]) -> tuple[int, list[str]]:
    """The exit status of `mailcli ARGV` in a fresh interpreter, and which of `watched` it
    imported (the password in the environment, as scripts give it). The editable install's
    path hook imports ipaddress (pathlib, urllib.parse) before mailcli starts, which an
    installed wheel does not: the watched modules are dropped first, so that only an
    import on mailcli's own path brings them back."""
    probe = (
        "import runpy, sys, json\n"
        f"sys.argv = ['mailcli', *{argv!r}]\n"
        f"for name in {watched!r}:\n    sys.modules.pop(name, None)\n"
        "status = 0\n"
        "try:\n    runpy.run_module('mailcli', run_name='__main__')\n"
        "except SystemExit as exc:\n    status = exc.code or 0\n"
        f"found = sorted(m for m in {watched!r} if m in sys.modules)\n"
        "sys.stderr.write(json.dumps([status, found]))\n"
    )
    env = {**os.environ, "MAILCLI_PASSWORD": password}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    status, found = json.loads(done.stderr.splitlines()[-1])
    return int(status), list(found)


def test_stat_over_stls_imports_no_address_parser(dovecot: Dovecot, mailbox: Mailbox) -> None:
    account = Account.pop3(dovecot, mailbox.user, mailbox.password, security="starttls")
    argv = ["stat", *account.args()]
    assert run_importing(argv, mailbox.password, ["ipaddress", "mailcli.smtp.dsn"]) == (0, [])


def test_send_without_dsn_options_imports_no_dsn_grammar(
    postfix: Postfix, mailbox: Mailbox
) -> None:
    route = Account.submission(postfix, mailbox.user, mailbox.password)
    argv = ["send", *route.args(), "--from", mailbox.address, "--to", mailbox.address]
    argv += ["--subject", "start-up", "--body", "A plain message.", "-q"]
    assert run_importing(argv, mailbox.password, ["mailcli.smtp.dsn"]) == (0, [])
