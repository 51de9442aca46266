"""Authentication: where a secret comes from (the credential chain: environment,
password command, OS keyring, prompt) and what programs mailcli starts may inherit.

May import: the base modules (errors, config, ...). The only importer of keyring.
Must never import it: the base modules. Kept free of code so that importing a module
of this package costs nothing more.
"""
