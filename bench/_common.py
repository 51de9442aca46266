"""Shared by the benchmarks: timing, alternating runs, tables, goals, test mail, peers.

Every benchmark starts its servers with the one launcher the tests use (tests/servers) and
runs the tools it compares alternately, in one process, so that the noise of this machine
hits all of them alike; medians and ratios always come from the same run.
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# The development venv (editable install) runs the benchmark scripts and the servers'
# launcher; it is never measured: its .pth hooks slow every start of its interpreter.
DEV_VENV = ROOT / ".venv"
BENCH_PYTHON = (
    str(DEV_VENV / "bin/python") if (DEV_VENV / "bin/python").exists() else sys.executable
)
TIME = "/usr/bin/time"
SYNC_CALLS = ("fsync", "fdatasync", "syncfs", "sync", "sync_file_range")


def _use_venv() -> None:
    """Re-run the calling script under the project's venv, which has the launcher's deps.

    The scripts start with `#!/usr/bin/env python3`; the system Python lacks trustme.
    """
    if Path(sys.prefix).resolve() != DEV_VENV.resolve() and Path(BENCH_PYTHON).exists():
        os.execv(BENCH_PYTHON, [BENCH_PYTHON, sys.argv[0], *sys.argv[1:]])


_use_venv()
sys.path.insert(0, str(ROOT))  # for tests.servers, the launcher the tests use too

from tests.servers import Dovecot, make_certs  # noqa: E402
from tests.servers.procs import make_workdir  # noqa: E402

# --- the mailcli under test: a wheel in a fresh venv, as users install it ------------------

# ignored by git (.gitignore: .venv/); $BENCH_VENV: another place, for benchmarks run side
# by side on one checkout (each venv holds one commit's wheel)
WHEEL_VENV = Path(os.environ.get("BENCH_VENV") or BENCH / ".venv")
STAMP = WHEEL_VENV / "mailcli-sources"
# What setuptools puts in the wheel: the mailcli package and the files pyproject.toml names.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "mailcli")


@dataclass(frozen=True)
class Installed:
    """mailcli as a user has it. `python` runs every Python baseline (python -c pass,
    the poplib and smtplib scripts), so both sides of a ratio start the same interpreter."""

    python: str
    mailcli: str


@functools.cache
def installed() -> Installed:
    """Build a wheel of a commit ($BENCH_REVISION, default HEAD) and install it, with its
    dependencies from PyPI, into a fresh venv (bench/.venv); kept while its sources stay.

    A commit, not the working tree: in a shared tree others' unfinished edits would be
    measured, and the wheel rebuilt whenever they save. Commit what you want to measure.
    The benchmarks' only way to the mailcli they measure (run_timed refuses the dev venv).
    """
    base = getattr(sys, "_base_executable", sys.executable)  # the dev venv's own Python
    # run-all pins the revision at its start: others' commits must not change what it measures
    revision = os.environ.get("BENCH_REVISION", "HEAD")
    sources = _git("ls-tree", "--name-only", revision, "--", *WHEEL_SOURCES).split()
    stamp = f"{base}\n{_git('rev-parse', *(f'{revision}:{name}' for name in sources))}"
    if not (STAMP.exists() and STAMP.read_text() == stamp):
        _install_wheel(base, revision, sources)
        STAMP.write_text(stamp)
    result = Installed(str(WHEEL_VENV / "bin/python"), str(WHEEL_VENV / "bin/mailcli"))
    where = subprocess.run(
        [result.python, "-c", "import mailcli; print(mailcli.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=WHEEL_VENV,  # not the checkout, whose mailcli/ `python -c` would import
    ).stdout.strip()
    if not Path(where).is_relative_to(WHEEL_VENV):
        raise RuntimeError(f"the bench venv imports mailcli from {where}, not from its wheel")
    commit = _git("log", "-1", "--format=%h", revision)
    print(f"  (mailcli under test: commit {commit}, the wheel in {WHEEL_VENV})", flush=True)
    return result


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _install_wheel(base_python: str, revision: str, sources: Sequence[str]) -> None:
    """pip wheel from the revision's sources exported to a temporary directory (the build also
    writes build/ and *.egg-info there), then a fresh venv and pip install of the wheel."""
    print(f"  (building mailcli's wheel, installing it into {WHEEL_VENV})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-wheel-") as temp:
        source, wheels = Path(temp) / "src", Path(temp) / "wheels"
        source.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "--", *sources],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        _checked(BENCH_PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source)
        shutil.rmtree(WHEEL_VENV, ignore_errors=True)
        _checked(base_python, "-m", "venv", WHEEL_VENV)
        wheel = next(wheels.glob("mailcli-*.whl"))
        _checked(WHEEL_VENV / "bin/python", "-m", "pip", "install", "-q", wheel)


def _checked(*args: str | Path) -> None:
    argv = [str(arg) for arg in args]
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def refuse_dev_venv(argv: Sequence[str]) -> None:
    """Raise if a benchmark is about to time a program of the development venv."""
    program = Path(os.path.abspath(argv[0]))  # not resolve(): venv interpreters are symlinks
    if "/" in argv[0] and program.is_relative_to(DEV_VENV):
        raise RuntimeError(f"{argv[0]} is the editable dev venv; time installed() instead")


# --- running and timing ------------------------------------------------------------------


@dataclass
class Command:
    """One run of a tool: argv, environment, where stdout goes, and a check of the result."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdout: Path | None = None  # None: /dev/null
    stdin: Path | None = None  # None: /dev/null
    verify: Callable[[], None] = lambda: None


def base_env(home: Path) -> dict[str, str]:
    """A minimal environment: no user config, no keyring, no proxy variables."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
    stdin: Path | None = None,
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, from /usr/bin/time; 0 without it) of one run."""
    refuse_dev_venv(argv)
    timed = os.path.exists(TIME)
    command = [TIME, "-f", "%M", *argv] if timed else list(argv)
    with _opened(stdout, "wb") as out, _opened(stdin, "rb") as inp:
        started = time.perf_counter()
        done = subprocess.run(command, env=env, stdin=inp, stdout=out, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-800:]!r}")
    peak = int(done.stderr.split()[-1]) if timed else 0
    return elapsed, peak


@contextmanager
def _opened(path: Path | None, mode: Literal["rb", "wb"]) -> Iterator[int | IO[bytes]]:
    """`path` opened in `mode`, or DEVNULL."""
    if path is None:
        yield subprocess.DEVNULL
        return
    with path.open(mode) as handle:
        yield handle


def run_command(command: Command) -> tuple[float, int]:
    """run_timed() for a Command, then its verify()."""
    result = run_timed(command.argv, env=command.env, stdout=command.stdout, stdin=command.stdin)
    command.verify()
    return result


def count_syncs(command: Command, trace_file: Path) -> int:
    """How many fsync/fdatasync/syncfs/sync calls one run makes (strace -c -f).

    Only those calls are traced, through a seccomp filter, so the rest run at full speed.
    """
    refuse_dev_venv(command.argv)
    argv = [
        "strace",
        "-f",
        "-c",
        "--seccomp-bpf",
        "-e",
        f"trace={','.join(SYNC_CALLS)}",
        "-o",
        str(trace_file),
        *command.argv,
    ]
    with _opened(command.stdout, "wb") as out:
        subprocess.run(argv, env=command.env, check=True, stdout=out, stderr=subprocess.DEVNULL)
    command.verify()
    total = 0
    for line in trace_file.read_text().splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(fields) >= 5 and fields[-1] in SYNC_CALLS:
            total += int(fields[3])
    return total


# --- alternating runs and tables -----------------------------------------------------------


class Measurements:
    """Wall times and peak RSS of several tools, collected from alternating runs."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.times: dict[str, list[float]] = {name: [] for name in names}
        self.peaks: dict[str, list[int]] = {name: [] for name in names}

    def add(self, name: str, elapsed: float, peak_kib: int) -> None:
        self.times[name].append(elapsed)
        self.peaks[name].append(peak_kib)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, name: str, baseline: str) -> float:
        return self.median(name) / self.median(baseline)

    def quartiles(self, name: str) -> tuple[float, float]:
        """First and third quartile of the wall times (the one sample twice for one run)."""
        times = self.times[name]
        if len(times) < 2:
            return times[0], times[0]
        first, _, third = statistics.quantiles(times, n=4, method="inclusive")
        return first, third

    def peak_mib(self, name: str) -> float:
        """The largest peak RSS of any run, MiB."""
        return max(self.peaks[name], default=0) / 1024

    def report(
        self, title: str, baseline: str, *, total: bool = False, spread: bool = False
    ) -> None:
        """Print a table: median seconds, ratio to `baseline`, peak RSS, runs (and sum, and
        the first and third quartile with `spread`)."""
        print(f"\n{title}")
        extra = f" {'sum s':>8}" if total else ""
        extra += f" {'q1-q3 s':>15}" if spread else ""
        header = f"{'median s':>9} {'ratio':>7} {'peak RSS MiB':>13} {'runs':>5}"
        print(f"  {'tool':<34} {header}{extra}")
        for name in self.names:
            summed = f" {sum(self.times[name]):>8.2f}" if total else ""
            if spread:
                first, third = self.quartiles(name)
                summed += f" {f'{first:.3f}-{third:.3f}':>15}"
            print(
                f"  {name:<34} {self.median(name):>9.4f} {self.ratio(name, baseline):>6.2f}x "
                f"{self.peak_mib(name):>13.1f} {len(self.times[name]):>5}{summed}"
            )
        print(f"  (ratio = median / median of {baseline!r})")


def alternate(
    cases: Mapping[str, Callable[[], Command]], runs: int, warmup: int = 1
) -> Measurements:
    """Run every case `warmup + runs` times, interleaved, keeping the last `runs` samples.

    Each round starts with a different case, so no tool always runs right after another.
    A case is called to prepare a fresh run (outside the timing) and returns its Command.
    """
    results = Measurements(list(cases))
    names = list(cases)
    for round_number in range(warmup + runs):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed, peak = run_with_retry(name, cases[name])
            if round_number >= warmup:
                results.add(name, elapsed, peak)
    return results


def run_with_retry(name: str, prepare: Callable[[], Command]) -> tuple[float, int]:
    """run_command() on a fresh Command; once more if it fails, saying so (run-all shows it).

    A failed run is never timed. A second failure ends the benchmark.
    """
    try:
        return run_command(prepare())
    except RuntimeError as error:
        print(f"  RETRIED: {name} failed ({str(error).splitlines()[0][:300]}); ran it again")
        return run_command(prepare())


def goal(description: str, value: float, limit: float, unit: str = "") -> bool:
    """Print one goal line (run-all collects them) and say whether it was met."""
    met = value <= limit
    verdict = "met" if met else "NOT MET"
    print(f"  goal: {description} = {value:.2f}{unit} (limit <= {limit:g}{unit}): {verdict}")
    return met


def goal_not_measured(description: str, why: str) -> None:
    """Print a goal line saying the goal could not be measured, and why."""
    print(f"  goal: {description}: NOT MEASURED ({why})")


# --- peers -----------------------------------------------------------------------------------

PEER_PACKAGES = {
    "mpop": "mpop",
    "getmail": "getmail6",
    "fetchmail": "fetchmail",
    "msmtp": "msmtp",
    "swaks": "swaks",
    "curl": "curl",
    "strace": "strace",
}


def available(*binaries: str) -> bool:
    """True if all `binaries` are installed; otherwise say clearly which are not."""
    missing = [name for name in binaries if shutil.which(name) is None]
    for name in missing:
        package = PEER_PACKAGES.get(name, name)
        print(f"  SKIPPED: {name} is not installed (apt-get install {package})")
    return not missing


# --- test mail -------------------------------------------------------------------------------

LOREM = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n"


def message(number: int, body_lines: int = 68) -> bytes:
    """A plain message of about 5 KB (LF line ends, as Dovecot stores mail)."""
    headers = (
        f"From: Bench <bench@example.test>\nTo: u@example.test\nSubject: message {number}\n"
        f"Date: Mon, 02 Jan 2006 15:04:05 +0000\nMessage-ID: <bench{number}@example.test>\n\n"
    )
    return headers.encode() + LOREM * body_lines


def fill_mailbox(dovecot: Dovecot, user: str, count: int) -> None:
    """Deliver `count` ~5 KB messages to `user`, then let Dovecot index them once."""
    for number in range(count):
        dovecot.drop_message(user, message(number))
    warm_index(dovecot, user)


def warm_index(dovecot: Dovecot, user: str) -> None:
    """One LIST/UIDL session, so Dovecot's index and size cache exist before timing."""
    import poplib

    client = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=120)
    try:
        client.user(user)
        client.pass_(dovecot.users[user])
        client.list()
        client.uidl()
    finally:
        client.quit()


def fresh_maildir(directory: Path) -> Path:
    """Empty `directory` and make a Maildir (tmp, new, cur) at directory/Maildir."""
    shutil.rmtree(directory, ignore_errors=True)
    maildir = directory / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    return maildir


def expect_files(directory: Path, count: int, what: str) -> Callable[[], None]:
    """A verify() that checks `directory` holds exactly `count` files."""

    def verify() -> None:
        found = sum(1 for _ in directory.iterdir())
        if found != count:
            raise RuntimeError(f"{what}: {found} files in {directory}, expected {count}")

    return verify


@contextmanager
def mail_server(prefix: str, users: Mapping[str, str]) -> Iterator[tuple[Dovecot, Path]]:
    """A throwaway Dovecot with `users` and a work directory the daemons can traverse."""
    root = make_workdir(prefix)
    try:
        certs = make_certs(root / "certs")
        with Dovecot(certs, dict(users)) as dovecot:
            yield dovecot, root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def elapsed_note(started: float) -> None:
    """Print how long the whole script took."""
    print(f"  (this benchmark took {time.perf_counter() - started:.1f} s)")
