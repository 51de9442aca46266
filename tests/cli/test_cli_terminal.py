"""One source of help text, one terminal object, global flags from one place."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from mailcli.cli.main import _COMMANDS, cli
from tests.helpers import run_cli

PACKAGE = Path(__file__).resolve().parents[2] / "mailcli"
GLOBAL_FLAGS = {"--account", "--json", "--trace", "--trace-data", "--trace-time", "--quiet"}


def group_listing() -> dict[str, str]:
    """`mailcli --help`'s Commands section: name -> the help shown beside it."""
    listing = run_cli(["--help"]).stdout.split("Commands:\n", 1)[1]
    rows = [line.split(None, 1) for line in listing.splitlines() if line.strip()]
    return {name: text for name, text in rows}


def loaded(name: str) -> click.Command:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert command is not None
    return command


def test_the_group_lists_each_commands_own_short_help() -> None:
    listing = group_listing()
    assert sorted(listing) == sorted(_COMMANDS)
    for name, text in listing.items():
        assert loaded(name).get_short_help_str(limit=200) == text, name


def leaves(command: click.Command) -> list[click.Command]:
    if isinstance(command, click.Group):
        return [leaf for sub in command.commands.values() for leaf in leaves(sub)]
    return [command]


@pytest.mark.parametrize("name", sorted(set(_COMMANDS) - {"sendmail", "completion"}))
def test_every_command_takes_the_global_flags_after_its_name(name: str) -> None:
    for command in leaves(loaded(name)):
        flags = {opt for param in command.params for opt in param.opts}
        assert flags >= GLOBAL_FLAGS, command.name
        assert len([p for p in command.params if "--json" in p.opts]) == 1  # added once


def test_only_render_asks_whether_a_stream_is_a_terminal() -> None:
    """isatty and the binary stdio buffers are the Terminal's (mailcli/render.py)."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "render.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("isatty", "buffer"):
                source = ast.unparse(node)
                assert not source.startswith("sys."), f"{path}: {source}"
