"""Minimal lock-step poplib clients that the benchmarks compare mailcli with (stdlib only).

    _poplib_client.py stat       connect, USER/PASS, STAT, QUIT; print "count octets"
    _poplib_client.py fetch DIR  RETR every message in turn, each into its own file in DIR
    _poplib_client.py headers    LIST, UIDL, then TOP n 0 of every message in turn; print
                                 number, size, UID, From, Date, Subject (not decoded)

The connection comes from the environment: POP_HOST, POP_PORT, POP_USER, POP_PASSWORD, and
POP_CAFILE (implicit TLS trusting that CA when set and not empty).
"""

from __future__ import annotations

import os
import poplib
import sys
from pathlib import Path

WANTED = (b"from", b"date", b"subject")


def connect() -> poplib.POP3:
    """Log in with USER/PASS, over implicit TLS when POP_CAFILE is set."""
    host, port = os.environ["POP_HOST"], int(os.environ["POP_PORT"])
    cafile = os.environ.get("POP_CAFILE")
    if cafile:
        import ssl

        context = ssl.create_default_context(cafile=cafile)
        client: poplib.POP3 = poplib.POP3_SSL(host, port, context=context, timeout=60)
    else:
        client = poplib.POP3(host, port, timeout=60)
    client.user(os.environ["POP_USER"])
    client.pass_(os.environ["POP_PASSWORD"])
    return client


def stat(client: poplib.POP3) -> None:
    count, octets = client.stat()
    print(count, octets)


def fetch(client: poplib.POP3, directory: Path) -> None:
    count, _ = client.stat()
    for number in range(1, count + 1):
        _, lines, _ = client.retr(number)
        (directory / f"{number}.poplib").write_bytes(b"\n".join(lines) + b"\n")


def headers(client: poplib.POP3) -> None:
    sizes = dict(line.split() for line in client.list()[1])
    uids = dict(line.split() for line in client.uidl()[1])
    out = sys.stdout.buffer
    for number, size in sizes.items():
        _, lines, _ = client.top(int(number), 0)
        fields = dict(line.split(b":", 1) for line in lines if b":" in line)
        values = {name.lower(): value.strip() for name, value in fields.items()}
        wanted = [values.get(name, b"") for name in WANTED]
        out.write(b"\t".join([number, size, uids[number], *wanted]) + b"\n")


def main(argv: list[str]) -> int:
    client = connect()
    if argv[0] == "stat":
        stat(client)
    elif argv[0] == "fetch":
        fetch(client, Path(argv[1]))
    elif argv[0] == "headers":
        headers(client)
    else:
        raise SystemExit(f"unknown job {argv[0]!r}")
    client.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
