"""Server checks: `mailcli check smtp|pop3`, the report of what a server offers and
what is wrong with it (report); TLS details come from the base module tlsinfo.

May import: the base modules, smtp and pop3. Must never import it: anything but cli.
"""
