"""`mailcli account import`: msmtp's and mpop's configuration, passwords and UIDL state
carried over into mailcli's config file, keyring and fetch state (`importer.run`)."""
