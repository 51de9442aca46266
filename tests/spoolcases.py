"""The spool's cases for the crash-point and error-point enumerations: QUEUED queued
messages for a cron account, the commands that enqueue and run them, how to count what
reached the server, and the invariants of the queue afterwards (`spool_problems`); the
config file the account commands rewrite."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

from mailcli.config import state_home
from mailcli.fetch.mailbox import Mailbox
from mailcli.fetch.state import UidState
from tests import crashpoints as cp
from tests.helpers import parse_trail_line, queue_dir, write_cron_config
from tests.servers.ports import free_port
from tests.servers.procs import read_log
from tests.servers.smtpd import AioSmtpd

QUEUED = 5


def outgoing(subject: str) -> bytes:
    return f"Subject: {subject}\n\nbody of {subject}\n".encode()


SENDMAIL = ["sendmail", "-i", "root@example.test"]
QUEUE_RUN = ["queue", "run"]
TRAIL_LOG = "~/mailcli.log"  # in each case's own HOME


def subjects(server: AioSmtpd, since: int) -> Counter[str]:
    return Counter(
        r.data.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for r in server.received[since:]
    )


def spool_problems(home: Path, failed: int | None) -> list[str]:
    """The queue lists cleanly, holds nothing, and `failed/` holds `failed` whole entries
    (None: any number, e.g. a half enqueue quarantined there)."""
    listed = cp.run(["queue", "list", "--json"], cp.base_env(home))
    problems = cp.exit_problem("queue list", listed)
    if not problems and json.loads(listed.stdout)["queue"]:
        problems.append(f"left in the queue: {listed.stdout[:200]!r}")
    queue = queue_dir(home)
    orphans = [p.name for p in queue.glob("*.eml") if not p.with_suffix(".json").exists()]
    failed_dir = queue / "failed"
    jsons = sorted(failed_dir.glob("*.json")) if failed_dir.is_dir() else []
    whole = [p for p in jsons if p.with_suffix(".eml").exists() and json.loads(p.read_text())]
    if orphans:
        problems.append(f"half entries (an .eml without its .json): {orphans}")
    emls = len(list(failed_dir.glob("*.eml"))) if failed_dir.is_dir() else 0
    if failed is not None and (len(whole) != failed or emls != failed):
        problems.append(f"failed/ holds {len(whole)} whole entries of {failed}")
    return problems + trail_problems(home)


def cron_home(home: Path, port: int) -> None:
    """The cases' config: the cron account submitting to 127.0.0.1:PORT, with a log, so
    that its appends are crash and error points too (`trail_problems`)."""
    write_cron_config(home, port, extra=f'log = "{TRAIL_LOG}"\n')


def trail_problems(home: Path) -> list[str]:
    """The log holds whole lines only, each in the documented grammar: a kill or a full
    disk may cost a line, never leave half of one for the next to be appended to."""
    path = home / TRAIL_LOG.removeprefix("~/")
    text = read_log(path)
    if text and not text.endswith("\n"):
        return [f"the log ends in half a line: {text[-80:]!r}"]
    problems = []
    for line in text.splitlines():
        try:
            parse_trail_line(line)
        except ValueError as exc:
            problems.append(f"a log line that does not parse: {exc}")
    return problems


def queue_template(tmp_path: Path) -> Path:
    """A home whose spool holds QUEUED entries (enqueued once, copied per crash point)."""
    template = tmp_path / "template"
    cron_home(template, free_port())
    for number in range(QUEUED):
        done = cp.run(SENDMAIL, cp.base_env(template), input=outgoing(f"q{number}"))
        assert done.code == 0, done.stderr  # queued
    return template


CONFIG_HEAD = '# my accounts (a comment to keep)\n[accounts.old]\nfrom = "old@example.test"\n'
ADD = ["account", "add", "new", "--from", "new@example.test", "--smtp-host", "mx.example.test"]
# The commands that rewrite the config; `import-state` records fetch state as well.
ACCOUNT_OPERATIONS = ("add", "remove", "import", "import-state")
IMPORTED_RC = "account new\nhost mx.example.test\nfrom new@example.test\n"  # an msmtprc
IMPORTED_UIDS = ("u1", "u2", "u3")  # mpop's UIDL file for the mpoprc below
IMPORTED_MAILBOX = Mailbox("new", "ann", "pop.example.test")
MPOP_UIDLS = f" {len(IMPORTED_UIDS)} pop.example.test ann\n" + "".join(
    f"{uid}\n" for uid in IMPORTED_UIDS
)


def account_args(operation: str, work: Path) -> list[str]:
    """The command of an `account` case; `import` reads an msmtprc written into `work`,
    `import-state` an mpoprc and its UIDL file."""
    if operation == "add":
        return ADD
    if operation == "remove":
        return ["account", "remove", "new"]
    if operation == "import-state":
        (work / "uidls").write_text(MPOP_UIDLS)
        rc = work / "mpoprc"
        rc.write_text(
            f"account new\nhost pop.example.test\nuser ann\nuidls_file {work / 'uidls'}\n"
        )
        return ["account", "import", "--from", "mpop", "--with-state", str(rc)]
    rc = work / "msmtprc"
    rc.write_text(IMPORTED_RC)
    return ["account", "import", "--from", "msmtp", str(rc)]


def account_home(root: Path, operation: str) -> Path:
    """A HOME at `root` for an `account` case (ACCOUNT_OPERATIONS) whose config holds
    CONFIG_HEAD, and account `new` too when the case removes it; the config file's path."""
    config = root / ".config" / "mailcli" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG_HEAD)
    if operation == "remove":
        assert cp.run(ADD, cp.base_env(root)).code == 0
    return config


def config_problems(
    config: Path, before: bytes, after: bytes, args: list[str], env: dict[str, str]
) -> list[str]:
    """After an `account` run that was killed or failed: the config is the old one or the
    new one, whole; a rerun (which may say "exists" or "no such account") ends with the
    new one and, for an import with its state, every UID of the old tool recorded."""
    problems = []
    text = config.read_bytes()
    if text not in (before, after):
        problems.append(f"config is neither the old nor the new one: {text[-120:]!r}")
    tomllib.loads(text.decode())  # parses, whole
    rerun = cp.run(args, env)
    problems += cp.exit_problem("rerun", rerun, sorted(cp.DOCUMENTED_EXITS))
    if config.read_bytes() != after:
        problems.append("after a rerun the config is not the new one")
    if "--with-state" in args:
        state = UidState(state_home(env) / "fetch", IMPORTED_MAILBOX, read_only=True)
        recorded = state.load()
        if set(recorded) != set(IMPORTED_UIDS):
            problems.append(f"after a rerun the fetch state holds {sorted(recorded)}")
    return problems
