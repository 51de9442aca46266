"""Authentication: what a session logs in with (`credential`: a password or an OAuth2
bearer source), where a password comes from (`credentials`, the credential chain:
environment, password command, OS keyring, ~/.netrc (`netrc`), prompt), every SASL
response and password digest on the wire (`sasl`, the SCRAM client `scram`), msmtp's and
mpop's Secret Service entries for `account import` (`libsecret`), and what programs
mailcli starts may inherit (`childenv`).

May import: the base modules (errors, config, ...). The only importer of keyring.
Must never import it: the base modules. Kept free of code so that importing a module
of this package costs nothing more.
"""
