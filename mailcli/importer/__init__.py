"""`mailcli account import`: the configuration, passwords and fetch state of msmtp, mpop
(`rcfile`, `msmtp`, `mpop`, msmtp's aliases file `aliases`, mpop's UIDL file `uidls`),
getmail6 (`getmail`, `getmail_keys`) and fetchmail (`fetchmail`, `fetchmail_keys`),
each key mapped or reported (`common`, `plan`), carried over into mailcli's config file,
keyring and fetch state in one run (`run`)."""
