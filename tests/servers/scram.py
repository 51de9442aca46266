"""Dovecot (and Postfix through its SASL socket) speaking SCRAM-SHA-1 and SCRAM-SHA-256:
the settings that add the mechanisms, and users whose password Dovecot stores only as a
SCRAM-SHA-256 hash made by its own `doveadm pw` (an implementation independent of
mailcli's), so a login that succeeds proves mailcli's proof right."""

from __future__ import annotations

import subprocess

from .dovecot import PASSWORD_MECHANISMS, Dovecot
from .procs import binary

# Appended to the config (a later setting wins). The {PLAIN} users work too: Dovecot
# derives the SCRAM keys from a plaintext password.
SCRAM_SETTINGS = f"\nauth_mechanisms = {PASSWORD_MECHANISMS} scram-sha-1 scram-sha-256\n"


def scram_hash(password: str, scheme: str = "SCRAM-SHA-256") -> str:
    """`{SCRAM-SHA-256}4096,SALT,STOREDKEY,SERVERKEY` for `password`, from doveadm."""
    done = subprocess.run(
        [binary("doveadm"), "pw", "-s", scheme, "-p", password],  # a throwaway test password
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def add_hashed_user(dovecot: Dovecot, user: str, password: str) -> None:
    """Add `user` whose passwd-file holds only the SCRAM-SHA-256 hash of `password`.
    Written before the user's first login: Dovecot has not read the {PLAIN} line yet."""
    dovecot.add_user(user, password)
    stored = scram_hash(password)
    path = dovecot.root / "users" / user
    temporary = path.with_name(f".{user}.scram")
    temporary.write_text(f"{user}:{stored}\n")
    temporary.chmod(0o644)
    temporary.replace(path)
