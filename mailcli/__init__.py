"""mailcli: SMTP submission and POP3 mailbox work from the command line."""

__version__ = "0.1.0"
