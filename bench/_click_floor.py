"""The floor of a click CLI doing mailcli's job: `import click`, then the standard library.

    _click_floor.py stat   POP3 with STLS (poplib), USER/PASS, STAT, QUIT; print "count octets"
    _click_floor.py send   build one short message with email.message.EmailMessage, submit it
                           with smtplib: STARTTLS, AUTH, MAIL/RCPT/DATA, QUIT

What any click CLI pays (importing click) plus what the work costs in the standard library;
mailcli's start-up is what it adds on top. The connection comes from
the environment: POP_HOST, POP_PORT, POP_USER, POP_PASSWORD, POP_CAFILE for `stat`;
SMTP_HOST, SMTP_PORT, SMTP_FROM, SMTP_TO, SMTP_SUBJECT, SMTP_BODY, SMTP_CAFILE, SMTP_USER,
SMTP_PASSWORD for `send`. Run by the Python mailcli is installed for (bench/.venv).
"""

from __future__ import annotations

import os
import sys

import click  # noqa: F401  (the floor: every click CLI imports it)


def stat() -> None:
    import poplib
    import ssl

    context = ssl.create_default_context(cafile=os.environ["POP_CAFILE"])
    client = poplib.POP3(os.environ["POP_HOST"], int(os.environ["POP_PORT"]), timeout=60)
    client.stls(context=context)
    client.user(os.environ["POP_USER"])
    client.pass_(os.environ["POP_PASSWORD"])
    count, octets = client.stat()
    print(count, octets)
    client.quit()


def send() -> None:
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    message = EmailMessage()
    message["From"] = os.environ["SMTP_FROM"]
    message["To"] = os.environ["SMTP_TO"]
    message["Subject"] = os.environ["SMTP_SUBJECT"]
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="example.test")
    message.set_content(os.environ["SMTP_BODY"])
    context = ssl.create_default_context(cafile=os.environ["SMTP_CAFILE"])
    with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]), timeout=60) as smtp:
        smtp.starttls(context=context)
        smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
        smtp.send_message(message)


if __name__ == "__main__":
    {"stat": stat, "send": send}[sys.argv[1]]()
