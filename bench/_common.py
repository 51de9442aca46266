"""Shared by the benchmarks: timing, medians, and the one server launcher (tests/servers)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.servers, the launcher the tests use too

VENV_BIN = ROOT / ".venv" / "bin"
MAILCLI = str(VENV_BIN / "mailcli") if (VENV_BIN / "mailcli").exists() else "mailcli"


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout: int | None = subprocess.DEVNULL,
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, via /usr/bin/time when present) of one run."""
    time_bin = shutil.which("time") or (
        "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    )
    command = [time_bin, "-f", "%M", *argv] if time_bin else list(argv)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=stdout, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]!r}")
    peak = int(done.stderr.split()[-1]) if time_bin else 0
    return elapsed, peak


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def report(title: str, rows: list[tuple[str, list[float], list[int]]], baseline: str) -> None:
    """A table: median seconds, ratio to `baseline`, peak RSS."""
    base = median(next(times for name, times, _ in rows if name == baseline))
    print(f"\n{title}")
    print(f"  {'tool':<28} {'median s':>9} {'ratio':>7} {'peak RSS MiB':>13}  runs")
    for name, times, peaks in rows:
        peak = max(peaks) / 1024 if peaks else 0
        print(
            f"  {name:<28} {median(times):>9.3f} {median(times) / base:>6.2f}x "
            f"{peak:>13.1f}  {len(times)}"
        )
