"""The environment of every program mailcli starts (the MDA, a password_command).

A child gets mailcli's environment without the secrets mailcli was given:
`MAILCLI_PASSWORD` and every other `MAILCLI_*` variable whose name says it carries a
secret (PASS, TOKEN, SECRET, KEY, CREDENTIAL anywhere in the name; this includes
`MAILCLI_PASSWORD_COMMAND`, whose text may hold a password). An MDA or a script has no
business with the mailbox password, and an environment is readable by every process of
the same user through /proc/PID/environ. Everything else is passed on unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_SECRET_NAME = re.compile(r"MAILCLI_.*(PASS|TOKEN|SECRET|KEY|CREDENTIAL)", re.IGNORECASE)


def is_secret_variable(name: str) -> bool:
    return _SECRET_NAME.match(name) is not None


def child_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`environ` without mailcli's secret-bearing variables: pass as `env=` to a child."""
    return {name: value for name, value in environ.items() if not is_secret_variable(name)}
