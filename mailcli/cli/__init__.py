"""The command-line layer: click commands, thin; the only importer of click."""

from mailcli.cli.main import cli, main

__all__ = ["cli", "main"]
