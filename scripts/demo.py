"""The demo behind scripts/demo: the SMTP and POP3 telnet posts, replayed with mailcli.

Servers come from tests/servers (the launcher the tests and benchmarks use): Postfix
delivers into Maildirs that Dovecot serves, on free ports of 127.0.0.1, with a
throwaway CA. Each step prints the command, then what mailcli printed (the transcript
of --trace is on stderr, shown inline).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import missing_reason  # noqa: E402
from tests.servers.stack import start_stack  # noqa: E402

MAILCLI = str(ROOT / ".venv" / "bin" / "mailcli")

CONFIG = """\
[accounts.alice]
from = "Alice <alice@example.test>"
user = "alice"
password_command = "echo alice-pw"
[accounts.alice.smtp]
host = "127.0.0.1"
port = {submission}
security = "starttls"
cafile = "{ca}"

[accounts.bob]
user = "bob"
password_command = "echo bob-pw"
[accounts.bob.pop3]
host = "127.0.0.1"
port = {pop3}
security = "starttls"
cafile = "{ca}"
"""


def step(title: str, argv: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    shown = shlex.join(["mailcli", *argv])
    if stdin is not None:
        shown = f"printf {shlex.quote(stdin)} | {shown}"
    print(f"\n### {title}\n$ {shown}", flush=True)
    done = subprocess.run(
        [MAILCLI, *argv],
        env=env,
        input=stdin,
        text=True,
        stdout=sys.stdout,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"demo: `{shown}` exited with {done.returncode}")


def main() -> int:
    missing = missing_reason("dovecot", "postfix", need_root=True)
    if missing:
        print(f"demo: cannot start the servers: {missing}", file=sys.stderr)
        print(
            "demo: as root, `scripts/setup` installs dovecot-core dovecot-pop3d postfix",
            file=sys.stderr,
        )
        return 69
    with start_stack(secret_service=False) as stack, tempfile.TemporaryDirectory() as home:
        where = stack.describe()
        config = Path(home) / "config.toml"
        config.write_text(
            CONFIG.format(
                submission=where["submission_port"], pop3=where["pop3_port"], ca=where["ca_pem"]
            )
        )
        env = {
            **os.environ,
            "MAILCLI_CONFIG": str(config),
            "HOME": home,
            "XDG_STATE_HOME": home,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
        print(
            f"servers: Postfix submission on 127.0.0.1:{where['submission_port']}, "
            f"Dovecot POP3 on 127.0.0.1:{where['pop3_port']} (STARTTLS/STLS, test CA)"
        )
        replay(stack, env)
    print("\ndemo: done; the servers are stopped.")
    return 0


def replay(stack: object, env: dict[str, str]) -> None:
    step(
        "SMTP: the headers say CEO -> all-staff; the envelope delivers alice -> bob",
        [
            "-a",
            "alice",
            "send",
            "--trace",
            "--from",
            "The CEO <ceo@example.test>",
            "--to",
            "all-staff@example.test",
            "--envelope-from",
            "alice@example.test",
            "--rcpt",
            "bob@example.test",
            "--subject",
            "Envelope vs headers",
            "--body",
            "MAIL FROM and RCPT TO decide delivery; From and To are only text.\n",
        ],
        env,
    )
    stack.postfix.wait_for_delivery("bob", 1)  # type: ignore[attr-defined]
    step("POP3: STAT", ["-a", "bob", "stat", "--trace"], env)
    step("POP3: LIST", ["-a", "bob", "list", "--trace"], env)
    step("POP3: RETR 1", ["-a", "bob", "retr", "1", "--trace"], env)
    step(
        "POP3: DELE, LIST, RSET, LIST, QUIT in one session, as in the post",
        ["-a", "bob", "shell", "--trace"],
        env,
        stdin="dele 1\nlist\nrset\nlist\nquit\n",
    )
    step("check the SMTP server", ["-a", "alice", "check", "smtp", "--login"], env)
    step("check the POP3 server", ["-a", "bob", "check", "pop3", "--login"], env)


if __name__ == "__main__":
    sys.exit(main())
