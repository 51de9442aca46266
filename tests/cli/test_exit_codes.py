"""Errors become one line on stderr and the documented exit status, in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

import mailcli.config
from mailcli import errors
from mailcli.errors import ExitStatus
from tests.helpers import run_cli, run_process

# The table of docs/design.md, "Exit codes".
DESIGN_EXIT_CODES = {
    "UsageError": 64,
    "DataError": 65,
    "NoInputError": 66,
    "HostNotFoundError": 68,
    "UnavailableError": 69,
    "RejectedError": 69,
    "CantCreateError": 73,
    "LocalIOError": 74,
    "TempFailError": 75,
    "ProtocolError": 76,
    "PermissionDeniedError": 77,
    "ConfigError": 78,
    "CredentialsError": 78,
}


@pytest.mark.parametrize(("name", "code"), DESIGN_EXIT_CODES.items())
def test_error_classes_carry_the_sysexits_code(name: str, code: int) -> None:
    error_class = getattr(errors, name)
    assert issubclass(error_class, errors.MailcliError)
    assert error_class("x").exit_status == code


@pytest.mark.parametrize(("name", "code"), DESIGN_EXIT_CODES.items())
def test_cli_translates_each_error_to_its_code(
    name: str, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise getattr(errors, name)("something specific went wrong", hint="try this")

    monkeypatch.setattr(mailcli.config, "load_config", fail)
    monkeypatch.setattr("mailcli.cli.context.load_config", fail)
    result = run_cli(["account", "list"])
    assert result.code == code
    assert result.stderr == (
        "mailcli: error: something specific went wrong\nmailcli: hint: try this\n"
    )
    assert result.stdout == ""


def test_unknown_command_is_a_usage_error_64() -> None:
    result = run_cli(["frobnicate"])
    assert result.code == ExitStatus.USAGE
    assert result.stderr.startswith("mailcli: error: No such command 'frobnicate'")


def test_unknown_option_is_a_usage_error_64_not_clicks_2() -> None:
    result = run_cli(["account", "list", "--no-such-option"])
    assert result.code == 64
    assert "--no-such-option" in result.stderr
    assert "mailcli account list --help" in result.stderr


def test_bad_option_value_is_64_with_one_error_line_and_nothing_written(
    isolated_environment: Path,
) -> None:
    result = run_cli(["account", "add", "x", "--smtp-port", "notaport"])
    assert result.code == 64
    first, *rest = result.stderr.splitlines()
    assert first.startswith("mailcli: error: Invalid value for '--smtp-port': 'notaport'")
    assert rest == ["mailcli: hint: see `mailcli account add --help`"]
    assert result.stdout == ""
    assert list(isolated_environment.rglob("*")) == []  # no config file, no directory


def test_unexpected_exception_is_70_with_one_line_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("mailcli.cli.context.load_config", broken)
    result = run_cli(["account", "list"])
    assert result.code == ExitStatus.SOFTWARE
    assert (
        result.stderr.splitlines()[0] == "mailcli: error: internal error: ZeroDivisionError: boom"
    )
    assert "Traceback" not in result.stderr
    assert "--debug" in result.stderr


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("mailcli.cli.context.load_config", broken)
    result = run_cli(["--debug", "account", "list"])
    assert result.code == 70
    assert "Traceback (most recent call last)" in result.stderr


def test_ctrl_c_exits_130_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mailcli.cli.context.load_config", interrupted)
    result = run_cli(["account", "list"])
    assert result.code == 130
    assert "Traceback" not in result.stderr
    assert "error" not in result.stderr


def test_version_and_help_as_a_real_process() -> None:
    version = run_process(["--version"])
    assert version.returncode == 0
    assert version.stdout.decode().startswith("mailcli ")
    help_text = run_process(["--help"]).stdout.decode()
    for group in ("account", "password"):
        assert f"  {group} " in help_text


def test_python_dash_m_and_bad_config_exit_78_from_a_real_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text("default_account = [\n")
    done = run_process(["--config", str(bad), "account", "list"])
    assert done.returncode == 78
    lines = done.stderr.decode().splitlines()
    assert lines[0].startswith(f"mailcli: error: {bad}: not valid TOML")
    assert len(lines) == 1


def test_a_broken_pipe_that_is_not_stdouts_is_a_bug_70_not_clicks_silent_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """stdout's reader going away is 141 (tests/robustness/test_process_edges.py); any other EPIPE
    reaching the top was not translated where it happened: click would exit 1 quietly."""

    def broken(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("mailcli.cli.context.load_config", broken)
    result = run_cli(["account", "list"])
    assert result.code == ExitStatus.SOFTWARE
    assert result.stderr.startswith("mailcli: error: internal error: BrokenPipeError")


def test_sigterm_and_sighup_exit_128_plus_the_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the signal handler raises (errors.Stopped) is an exit status, quietly."""
    for signum in (15, 1):

        def stopped(*args: object, signum: int = signum, **kwargs: object) -> None:
            raise errors.Stopped(signum)

        monkeypatch.setattr("mailcli.cli.context.load_config", stopped)
        result = run_cli(["account", "list"])
        assert (result.code, result.stderr) == (128 + signum, "")
