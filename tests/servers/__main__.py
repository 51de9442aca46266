"""``python -m tests.servers``: run all test servers until told to stop.

Prints one JSON line to stdout (ports, CA path, users, keyring env; see
``ServerStack.describe``) once everything is ready, then waits for SIGINT, SIGTERM, or EOF
on stdin, and stops everything. The EOF rule lets a parent process (demo, benchmark) tie
the servers' life to a pipe; a stdin of /dev/null is ignored, so ``... &`` in a script works.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import FrameType

from .stack import start_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers",
        description="Run the throwaway mail servers, print where they listen (JSON), and "
        "stop them on SIGINT, SIGTERM or EOF on stdin.",
    )
    parser.add_argument("--no-keyring", action="store_true", help="do not start the Secret Service")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with start_stack(secret_service=not args.no_keyring) as stack:
        print(json.dumps(stack.describe()), flush=True)
        print("servers ready; stop with Ctrl-C, SIGTERM or EOF on stdin", file=sys.stderr)
        if not _stdin_is_devnull():
            threading.Thread(target=_set_on_eof, args=(stop,), daemon=True).start()
        # A timeout keeps the main thread responsive to signals while it waits.
        while not stop.wait(timeout=0.5):
            pass
    return 0


def _set_on_eof(event: threading.Event) -> None:
    """Read (and discard) stdin until EOF, then set ``event``."""
    for _line in sys.stdin:
        pass
    event.set()


def _stdin_is_devnull() -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdin.fileno()), os.stat(os.devnull))
    except (OSError, ValueError):  # closed or detached stdin: nothing to watch
        return True


if __name__ == "__main__":
    sys.exit(main())
