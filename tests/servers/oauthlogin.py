"""The mailcli side of the test authorization server (authserver.py): an account
configured for it, and the browser's part of a loopback login (`mailcli oauth login`).

`write_config` writes one account, `work`, whose oauth2 table points at the server's
endpoints and keeps its tokens in files; `browser_login` runs `mailcli oauth login` as a
process and plays the browser that follows the printed URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from .authserver import AuthServer

SMTP_TABLE = '[accounts.work.smtp]\nhost = "127.0.0.1"\n'
_MAILCLI = [sys.executable, "-m", "mailcli"]


def write_config(
    path: Path, server: AuthServer, *, user: str = "alice@example.test", servers: str = SMTP_TABLE,
    **oauth2: object,
) -> Path:  # fmt: skip
    """The config file at `path`: account `work` logging in at `server`; `oauth2` adds
    or overrides keys of its oauth2 table (None leaves a key out)."""
    settings: dict[str, object] = {
        "provider": "custom",
        "client_id": server.client_id,
        "authorize_url": server.url("/authorize"),
        "token_url": server.url("/token"),
        "device_url": server.url("/device/code"),
        "revoke_url": server.url("/revoke"),
        "scopes": ["mail"],
        "token_store": "file",
        **oauth2,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items() if value is not None]
    path.write_text(
        f"[accounts.work]\nuser = {json.dumps(user)}\n{servers}"
        "[accounts.work.oauth2]\n" + "\n".join(lines) + "\n"
    )
    return path


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
