"""The command-line layer: click commands, thin (parse, build settings, call one core
function, render); `main` (in main.py) is the entry point. The only importer of click.

May import: everything. Must never import it: anything outside cli.
"""
