"""A minimal smtplib client that bench/send compares mailcli with (stdlib only).

    _smtplib_client.py < MESSAGE   send the ready message on stdin to SMTP_TO, then QUIT

The route comes from the environment: SMTP_HOST, SMTP_PORT, SMTP_FROM, SMTP_TO, and for
submission SMTP_CAFILE (STARTTLS trusting only that CA), SMTP_USER and SMTP_PASSWORD
(AUTH). Run by the Python mailcli is installed for, so the ratio compares like with like.
"""

from __future__ import annotations

import os
import smtplib
import sys


def main() -> int:
    message = sys.stdin.buffer.read()
    with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]), timeout=60) as smtp:
        cafile = os.environ.get("SMTP_CAFILE")
        if cafile:
            import ssl

            smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
        smtp.sendmail(os.environ["SMTP_FROM"], [os.environ["SMTP_TO"]], message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
