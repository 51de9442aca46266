"""`python -m mailcli`."""

from mailcli.cli import main

main()
