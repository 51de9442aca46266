"""The browser's part of a loopback login (`mailcli oauth login`) at the test
authorization server (authserver.py): `browser_login` runs `mailcli oauth login` as a
process and plays the browser that follows the printed URL. The account it logs in is
written by `tests.helpers.write_config`."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

_MAILCLI = [sys.executable, "-m", "mailcli"]


def browser_login(
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = ("--no-open",),
    client_secret: str | None = None,
) -> tuple[int, str, str]:
    """`mailcli oauth login --no-open` as a process; the test is the browser: it follows
    the printed URL, the server redirects it to mailcli's loopback listener. With
    `client_secret`: `--client-secret`, and the secret piped on stdin."""
    process = subprocess.Popen(
        [*_MAILCLI, "oauth", "login", *options, *(["--client-secret"] if client_secret else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL if client_secret is None else subprocess.PIPE,
        env=env if env is not None else dict(os.environ),
        text=True,
    )
    assert process.stderr is not None
    if process.stdin is not None:
        with process.stdin:
            process.stdin.write(f"{client_secret}\n")
        process.stdin = None  # written and closed: communicate() must not flush it
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("http://"):
            with urllib.request.urlopen(line.strip(), timeout=30) as answer:
                assert answer.status == 200
            break
    out, err = process.communicate(timeout=60)
    return process.returncode, out, "".join(seen) + err
