"""How each SMTP client is run by bench/send: one function per tool.

mailcli and swaks compose the message from a subject and a body (and attachments);
msmtp and curl are handed a ready message file, as they are meant to be used. Every
function returns a Command; `smtp` says where to submit and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _common import BENCH, Command, base_env, installed

SENDER = "bench@example.test"
SUBJECT = "bench"
BODY = "A short benchmark message."
SMTPLIB_CLIENT = str(BENCH / "_smtplib_client.py")


@dataclass(frozen=True)
class SmtpRoute:
    """Plain SMTP (no TLS, no AUTH) or submission (STARTTLS, then AUTH as `user`)."""

    host: str
    port: int
    ca_pem: Path
    user: str | None = None  # None: plain SMTP, relaying allowed for 127.0.0.1
    password: str = ""

    @property
    def submission(self) -> bool:
        return self.user is not None


def ready_message(path: Path, recipient: str) -> Path:
    """Write the message msmtp and curl submit (what mailcli and swaks compose)."""
    path.write_text(
        f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {SUBJECT}\r\n"
        f"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <{path.name}@example.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{BODY}\r\n"
    )
    return path


def mailcli_send(route: SmtpRoute, home: Path, recipient: str, *extra: str) -> Command:
    security = (
        ["--security", "starttls", "--cafile", str(route.ca_pem), "--user", str(route.user)]
        if route.submission
        else ["--security", "none"]
    )
    argv = [
        installed().mailcli,
        "send",
        "--host",
        route.host,
        "--port",
        str(route.port),
        *security,
        "--from",
        SENDER,
        "--to",
        recipient,
        "--subject",
        SUBJECT,
        "--body",
        BODY,
        "-q",
        *extra,
    ]
    env = {
        **base_env(home),
        "MAILCLI_PASSWORD": route.password,
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    return Command(argv, env)


def smtplib_send(route: SmtpRoute, home: Path, recipient: str, message: Path) -> Command:
    """bench/_smtplib_client.py, run by mailcli's Python, the ready message on stdin."""
    env = {
        **base_env(home),
        "SMTP_HOST": route.host,
        "SMTP_PORT": str(route.port),
        "SMTP_FROM": SENDER,
        "SMTP_TO": recipient,
    }
    if route.submission:
        env |= {
            "SMTP_CAFILE": str(route.ca_pem),
            "SMTP_USER": str(route.user),
            "SMTP_PASSWORD": route.password,
        }
    return Command([installed().python, SMTPLIB_CLIENT], env, stdin=message)


def msmtp_send(route: SmtpRoute, home: Path, recipient: str, message: Path) -> Command:
    config = home / f"msmtprc-{route.port}"
    if not config.exists():
        tls = (
            f"tls on\ntls_starttls on\ntls_trust_file {route.ca_pem}\n"
            f"auth on\nuser {route.user}\npassword {route.password}\n"
            if route.submission
            else "tls off\nauth off\n"
        )
        config.write_text(
            f"account bench\nhost {route.host}\nport {route.port}\nfrom {SENDER}\n{tls}"
        )
        config.chmod(0o600)
    argv = ["msmtp", "-C", str(config), "-a", "bench", recipient]
    return Command(argv, base_env(home), stdin=message)


def swaks_send(route: SmtpRoute, home: Path, recipient: str, *extra: str) -> Command:
    tls = (
        [
            "-tls",
            "--tls-verify",
            "--tls-ca-path",
            str(route.ca_pem),
            "--auth-user",
            str(route.user),
            "--auth-password",
            route.password,
        ]
        if route.submission
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
        recipient,
        "--header",
        f"Subject: {SUBJECT}",
        "--body",
        BODY,
        "--silent",
        "2",
        *extra,
    ]
    return Command(argv, base_env(home))


def curl_send(route: SmtpRoute, home: Path, recipient: str, message: Path) -> Command:
    tls = (
        ["--ssl-reqd", "--cacert", str(route.ca_pem), "-u", f"{route.user}:{route.password}"]
        if route.submission
        else []
    )
    argv = [
        "curl",
        "-sS",
        f"smtp://{route.host}:{route.port}",
        *tls,
        "--mail-from",
        SENDER,
        "--mail-rcpt",
        recipient,
        "-T",
        str(message),
    ]
    return Command(argv, base_env(home))
