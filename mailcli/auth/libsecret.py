"""Passwords other tools keep in the Secret Service under their own attributes.

msmtp and mpop store a login's password with the libsecret attributes `host`,
`service` (smtp or pop3) and `user` (what `secret-tool store ... host H service smtp
user U` writes), not under mailcli's service name: `account import --with-passwords`
finds them here and copies them into mailcli's entry (`credentials.keyring_set`).

Only reading, only on that path: secretstorage (keyring's own Secret Service client) is
imported here, lazily, and every call is bounded as the keyring's are
(`credentials.KEYRING_TIMEOUT`). A locked item is not unlocked (that would prompt).
"""

from __future__ import annotations

from mailcli.auth.credentials import KeyringUnavailable, keyring_call


def lookup_stored_login(host: str, service: str, user: str) -> str | None:
    """The password stored for USER at HOST by an msmtp-style tool; None when there is
    none (or only a locked one); KeyringUnavailable when the service cannot be asked."""

    def search() -> str | None:
        import secretstorage

        connection = secretstorage.dbus_init()
        try:
            attributes = {"host": host, "service": service, "user": user}
            for item in secretstorage.search_items(connection, attributes):
                if not item.is_locked():
                    return item.get_secret().decode("utf-8", "replace")
            return None
        finally:
            connection.close()

    return keyring_call(search)


__all__ = ["KeyringUnavailable", "lookup_stored_login"]
