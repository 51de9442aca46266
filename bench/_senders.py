"""How each SMTP client is run by bench/send: one function per tool.

mailcli and swaks compose the message from a subject and a body (and attachments);
msmtp and curl are handed a ready message file, as they are meant to be used. Every
function returns a Command; the route, a tests Account (plain_smtp, submission), says
where to submit and how. Recipients are one address or several (`Recipients`): each
tool names every one in the envelope (mailcli `--to` each, msmtp and swaks a list, curl
`--mail-rcpt` each) and the ready message's To: field lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import BENCH, Command, base_env, installed

from tests.servers import Postfix
from tests.servers.accounts import Account

SENDER = "bench@example.test"
SUBJECT = "bench"
BODY = "A short benchmark message."
SMTPLIB_CLIENT = str(BENCH / "_smtplib_client.py")

Recipients = str | Sequence[str]


def listed(recipients: Recipients) -> list[str]:
    """One address or several, as a list."""
    return [recipients] if isinstance(recipients, str) else list(recipients)


def plain_smtp(postfix: Postfix) -> Account:
    """Port 25 style: no TLS, no AUTH (Postfix lets 127.0.0.1 relay), no CA."""
    return Account(postfix.host, postfix.smtp_port, security="none")


def submission(postfix: Postfix, user: str, password: str) -> Account:
    """The submission port: STARTTLS with Postfix's CA, then AUTH as `user`."""
    return Account.submission(postfix, user, password)


def authenticates(route: Account) -> bool:
    """Submission (STARTTLS, then AUTH), not plain SMTP."""
    return route.user is not None


def ready_message(path: Path, recipients: Recipients) -> Path:
    """Write the message msmtp and curl submit (what mailcli and swaks compose)."""
    path.write_text(
        f"From: {SENDER}\r\nTo: {', '.join(listed(recipients))}\r\nSubject: {SUBJECT}\r\n"
        f"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <{path.name}@example.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{BODY}\r\n"
    )
    return path


def mailcli_send(route: Account, home: Path, recipients: Recipients, *extra: str) -> Command:
    to = [arg for address in listed(recipients) for arg in ("--to", address)]
    message = ["--from", SENDER, *to, "--subject", SUBJECT, "--body", BODY]
    argv = [installed().mailcli, "send", *route.args(), *message, "-q", *extra]
    env = {
        **base_env(home),
        **route.env(),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    return Command(argv, env)


def smtplib_send(route: Account, home: Path, recipient: str, message: Path) -> Command:
    """bench/_smtplib_client.py, run by mailcli's Python, the ready message on stdin."""
    env = {
        **base_env(home),
        "SMTP_HOST": route.host,
        "SMTP_PORT": str(route.port),
        "SMTP_FROM": SENDER,
        "SMTP_TO": recipient,
    }
    if authenticates(route):
        env |= {
            "SMTP_CAFILE": str(route.cafile),
            "SMTP_USER": str(route.user),
            "SMTP_PASSWORD": str(route.password),
        }
    return Command([installed().python, SMTPLIB_CLIENT], env, stdin=message)


def msmtp_send(route: Account, home: Path, recipients: Recipients, message: Path) -> Command:
    config = msmtp_config(route, home)
    argv = ["msmtp", "-C", str(config), "-a", "bench", *listed(recipients)]
    return Command(argv, base_env(home), stdin=message)


def msmtp_config(route: Account, home: Path) -> Path:
    """msmtp's configuration file for `route` (written once), account `bench`."""
    config = home / f"msmtprc-{route.port}"
    if not config.exists():
        tls = (
            f"tls on\ntls_starttls on\ntls_trust_file {route.cafile}\n"
            f"auth on\nuser {route.user}\npassword {route.password}\n"
            if authenticates(route)
            else "tls off\nauth off\n"
        )
        config.write_text(
            f"account bench\nhost {route.host}\nport {route.port}\nfrom {SENDER}\n{tls}"
        )
        config.chmod(0o600)
    return config


def swaks_send(route: Account, home: Path, recipients: Recipients, *extra: str) -> Command:
    tls = (
        [
            "-tls",
            "--tls-verify",
            "--tls-ca-path",
            str(route.cafile),
            "--auth-user",
            str(route.user),
            "--auth-password",
            str(route.password),
        ]
        if authenticates(route)
        else []
    )
    argv = [
        "swaks",
        "--server",
        route.host,
        "--port",
        str(route.port),
        *tls,
        "--from",
        SENDER,
        "--to",
        ",".join(listed(recipients)),
        "--header",
        f"Subject: {SUBJECT}",
        "--body",
        BODY,
        "--silent",
        "2",
        *extra,
    ]
    return Command(argv, base_env(home))


def curl_send(route: Account, home: Path, recipients: Recipients, message: Path) -> Command:
    tls = (
        ["--ssl-reqd", "--cacert", str(route.cafile), "-u", f"{route.user}:{route.password}"]
        if authenticates(route)
        else []
    )
    argv = [
        "curl",
        "-sS",
        f"smtp://{route.host}:{route.port}",
        *tls,
        "--mail-from",
        SENDER,
        *(arg for address in listed(recipients) for arg in ("--mail-rcpt", address)),
        "-T",
        str(message),
    ]
    return Command(argv, base_env(home))
