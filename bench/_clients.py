"""How each POP3 client is run by the benchmarks: one function per tool and job.

Each returns a Command with a fresh destination and state (prepared outside the timing)
and a verify() that checks the run delivered what it should. Peers run at their defaults
(durability included) unless a comment says otherwise.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from _common import (
    BENCH,
    Command,
    base_env,
    expect_files,
    fresh_maildir,
    installed,
)

from tests.servers import Dovecot
from tests.servers.accounts import Account

POPLIB_CLIENT = str(BENCH / "_poplib_client.py")


def pop3_account(dovecot: Dovecot, user: str, *, tls: bool = False) -> Account:
    """`user` on Dovecot over implicit TLS (POP3S, with Dovecot's CA), else plain POP3
    without STLS (`--security none`, no CA)."""
    if tls:
        return Account.pop3(dovecot, user, dovecot.users[user], security="tls")
    return replace(Account.pop3(dovecot, user, dovecot.users[user], security="none"), cafile=None)


def uses_tls(account: Account) -> bool:
    return account.security == "tls"


Fetcher = Callable[[Account, Path, int], Command]


def fetch_cases(
    tools: dict[str, Fetcher], account: Account, work: Path, count: int
) -> dict[str, Callable[[], Command]]:
    """For bench.alternate: one preparing callable per tool, each with its own directory."""
    return {
        name: partial(fetcher, account, work / f"t{index}", count)
        for index, (name, fetcher) in enumerate(tools.items())
    }


# --- mailcli ---------------------------------------------------------------------------------


def mailcli_env(account: Account, directory: Path) -> dict[str, str]:
    """Password from the environment; fresh state (no UIDs seen, no config)."""
    return {
        **base_env(directory),
        "MAILCLI_PASSWORD": account.password,
        "XDG_STATE_HOME": str(directory / "state"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }


def mailcli_fetch(account: Account, directory: Path, count: int) -> Command:
    maildir = fresh_maildir(directory)
    argv = [installed().mailcli, "fetch", *account.args(), "--to", f"maildir:{maildir}"]
    verify = expect_files(maildir / "new", count, "mailcli fetch")
    return Command(argv, mailcli_env(account, directory), verify=verify)


def mailcli_command(account: Account, directory: Path, *args: str) -> Command:
    """A one-session mailcli command (stat, list, retr ...), stdout to directory/out."""
    directory.mkdir(parents=True, exist_ok=True)
    argv = [installed().mailcli, *args, *account.args()]
    return Command(argv, mailcli_env(account, directory), stdout=directory / "out")


# --- minimal poplib scripts (bench/_poplib_client.py) -----------------------------------------


def poplib_command(account: Account, directory: Path, *args: str) -> Command:
    """`_poplib_client.py ARGS`, connection from the environment, stdout to directory/out.

    Run by the Python mailcli is installed for, so the ratio compares like with like.
    """
    directory.mkdir(parents=True, exist_ok=True)
    env = {
        **base_env(directory),
        "POP_HOST": account.host,
        "POP_PORT": str(account.port),
        "POP_USER": str(account.user),
        "POP_PASSWORD": str(account.password),
        "POP_CAFILE": str(account.cafile) if uses_tls(account) else "",
    }
    return Command([installed().python, POPLIB_CLIENT, *args], env, stdout=directory / "out")


def poplib_fetch(account: Account, directory: Path, count: int) -> Command:
    """Lock-step RETR of every message, each written to its own file in Maildir/new."""
    maildir = fresh_maildir(directory)
    command = poplib_command(account, directory, "fetch", str(maildir / "new"))
    command.verify = expect_files(maildir / "new", count, "poplib fetch")
    return command


# --- curl ------------------------------------------------------------------------------------


def curl_url(account: Account, path: str = "") -> str:
    scheme = "pop3s" if uses_tls(account) else "pop3"
    return f"{scheme}://{account.host}:{account.port}/{path}"


def curl_command(account: Account, directory: Path, path: str, *args: str) -> Command:
    directory.mkdir(parents=True, exist_ok=True)
    tls = ["--cacert", str(account.cafile)] if uses_tls(account) else []
    argv = [
        "curl",
        "-sS",
        "--fail",
        curl_url(account, path),
        "-u",
        f"{account.user}:{account.password}",
        *tls,
        *args,
    ]
    return Command(argv, base_env(directory), stdout=directory / "out")


# --- mpop ------------------------------------------------------------------------------------


def mpop_fetch(account: Account, directory: Path, count: int) -> Command:
    """mpop into a fresh Maildir with a fresh UIDL file (so it fetches everything)."""
    maildir = fresh_maildir(directory)
    tls = (
        f"tls on\ntls_starttls off\ntls_trust_file {account.cafile}\n"
        if uses_tls(account)
        else "tls off\n"
    )
    config = directory / "mpoprc"
    config.write_text(
        f"defaults\naccount bench\nhost {account.host}\nport {account.port}\n"
        f"user {account.user}\npassword {account.password}\nauth user\n{tls}keep on\n"
        f"delivery maildir {maildir}\nuidls_file {directory / 'uidls'}\n"
    )
    config.chmod(0o600)
    argv = ["mpop", "-q", "-C", str(config), "bench"]
    return Command(argv, base_env(directory), verify=expect_files(maildir / "new", count, "mpop"))


# --- getmail6 ---------------------------------------------------------------------------------

# getmail's Maildir delivery refuses to run as root; as root it must be told a user to
# deliver as (it forks a child per message anyway), and that user must own the Maildir.
GETMAIL_USER = "nobody"
# getmail 6.18 can miss the exit of a delivery child that ends before it starts waiting
# (getmail6 issues #52, #226) and then fails after `timeout` seconds (default 180), which
# is also its socket timeout; 20 s is ample on 127.0.0.1 and bounds that stall.
GETMAIL_TIMEOUT = 20


def getmail_fetch(account: Account, directory: Path, count: int) -> Command:
    """getmail6 into a fresh Maildir; read_all with a fresh getmail dir (no oldmail file)."""
    maildir = fresh_maildir(directory)
    owner = pwd.getpwnam(GETMAIL_USER)
    for path in (maildir, *(maildir / sub for sub in ("tmp", "new", "cur"))):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    retriever = "SimplePOP3SSLRetriever" if uses_tls(account) else "SimplePOP3Retriever"
    tls = f"ca_certs = {account.cafile}\n" if uses_tls(account) else ""
    (directory / "getmail").mkdir()
    config = directory / "getmailrc"
    config.write_text(
        f"[retriever]\ntype = {retriever}\nserver = {account.host}\nport = {account.port}\n"
        f"username = {account.user}\npassword = {account.password}\n"
        f"timeout = {GETMAIL_TIMEOUT}\n{tls}\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\nuser = {GETMAIL_USER}\n\n"
        "[options]\nread_all = true\ndelete = false\nverbose = 0\n"
    )
    argv = ["getmail", "--rcfile", str(config), "--getmaildir", str(directory / "getmail")]
    verify = expect_files(maildir / "new", count, "getmail")
    return Command(argv, base_env(directory), verify=verify)


# --- fetchmail --------------------------------------------------------------------------------


def fetchmail_fetch(account: Account, directory: Path, count: int) -> Command:
    """fetchmail, keep + fetchall, no daemon, delivering through a one-line Maildir MDA.

    The MDA (`exec cat > Maildir/new/PID`, one /bin/sh per message, as fetchmail runs any
    MDA) writes each message straight into new/ without syncing: fetchmail's own default
    durability is whatever its MDA does. Plain POP3 needs `sslproto ''`, else fetchmail
    upgrades with STLS on its own.
    """
    maildir = fresh_maildir(directory)
    tls = f"ssl sslcertck sslcertfile {account.cafile}" if uses_tls(account) else "sslproto ''"
    config = directory / "fetchmailrc"
    config.write_text(
        "set no syslog\n"
        f"poll {account.host} service {account.port} protocol pop3 auth password\n"
        f'  user "{account.user}" there with password "{account.password}" is root here\n'
        f"  keep fetchall {tls}\n"
        f'  mda "exec cat > {maildir}/new/$$.fetchmail"\n'
    )
    config.chmod(0o600)
    argv = [
        "fetchmail",
        "-f",
        str(config),
        "-i",
        str(directory / "ids"),
        "--pidfile",
        str(directory / "pid"),
        "--nosyslog",
        "-s",
    ]
    verify = expect_files(maildir / "new", count, "fetchmail")
    return Command(argv, base_env(directory), verify=verify)
