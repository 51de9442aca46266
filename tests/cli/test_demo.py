"""The README's first command: the demo replays both telnet posts and exits 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers import NEEDS, require

ROOT = Path(__file__).resolve().parents[2]


def test_demo_replays_both_posts() -> None:
    require(*NEEDS["postfix"], need_root=True)
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--no-setup"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = done.stdout
    # The envelope differs from the headers, and the trace shows it.
    assert "~> mail FROM:<alice@example.test>" in out
    assert "~> rcpt TO:<bob@example.test>" in out
    assert "bob@example.test\taccepted" in out
    # The POP3 post: STAT, LIST, RETR, then DELE/LIST/RSET/LIST/QUIT in one session.
    for line in ("~> STAT", "~> RETR 1", "~> DELE 1", "~> RSET", "~> QUIT"):
        assert line in out
    assert "To: all-staff@example.test" in out
    assert "~> AUTH PLAIN ********" in out and "alice-pw" not in out and "bob-pw" not in out
    assert out.count("ok\tlogin\tlogin as ") == 2  # both checks logged in
    assert "demo: done" in out
