"""TLS trust beyond the test CA: certificates to pin and client certificates.

- `make_pinned_certs`: a server leaf from a CA of its own, which no client trusts (a
  self-signed server, as far as a client knows); its `fingerprint` is what a pin names.
- `ClientCA`: a CA that issues client certificates, which Dovecot (`dovecot_settings`)
  and Postfix (`postfix_settings`) are told to ask for and trust.
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import trustme

from .certs import Certs, make_certs
from .ports import HOST, free_port


def fingerprint(cert_pem: Path) -> str:
    """The first certificate's SHA-256 in the form `mailcli check` prints."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def make_pinned_certs(
    directory: Path, identities: tuple[str, ...] = ("127.0.0.1", "pinned.test")
) -> Certs:
    """A leaf for `identities` from a CA that nothing trusts (by default not for
    `localhost`, a name that reaches it all the same: a wrong host name)."""
    return make_certs(directory, "pinned", identities=identities)


@dataclass(frozen=True)
class ClientCert:
    cert_pem: Path  # the certificate alone
    key_pem: Path  # its key alone
    combined_pem: Path  # key and certificate in one file (--client-cert alone)


class ClientCA:
    """A CA for client certificates; `ca_pem` is what a server trusts them by."""

    def __init__(self, directory: Path, name: str = "clients") -> None:
        self.directory = directory
        self.name = name
        self._ca = trustme.CA(organization_name=f"mailcli {name}")
        self.ca_pem = directory / f"{name}-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_pem))

    def issue(self, user: str) -> ClientCert:
        """A certificate whose common name is `user` (Dovecot's user name from it)."""
        leaf = self._ca.issue_cert(f"{user}.clients.test", common_name=user)
        stem = self.directory / f"{self.name}-{user}"
        cert = ClientCert(
            Path(f"{stem}-cert.pem"), Path(f"{stem}-key.pem"), Path(f"{stem}-both.pem")
        )
        leaf.cert_chain_pems[0].write_to_path(str(cert.cert_pem))
        leaf.private_key_pem.write_to_path(str(cert.key_pem))
        cert.combined_pem.write_bytes(
            leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes()
        )
        for path in (cert.key_pem, cert.combined_pem):
            path.chmod(0o600)
        return cert


def dovecot_settings(client_ca: Path, *, external: bool = False) -> str:
    """Dovecot asks for a client certificate, trusts `client_ca`'s and refuses a login
    without one; with `external`, SASL EXTERNAL logs in as the certificate's CN."""
    settings = f"""
ssl_ca = <{client_ca}
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_require_client_cert = yes
"""
    if external:
        settings += """
auth_mechanisms = plain login external
auth_ssl_username_from_cert = yes
ssl_cert_username_field = commonName
# The certificate is the credential: EXTERNAL logins need no password (the passwd-file
# passdb before this one fails them, and failure continues to the next passdb).
passdb {
  driver = static
  args = nopassword=y
  mechanisms = external
}
"""
    return settings


def postfix_settings(client_ca: Path, trusted: list[str]) -> dict[str, str]:
    """Postfix asks every client for a certificate (trusting `client_ca`'s) and counts
    the certificates whose fingerprints `fingerprint` gave as `trusted` for
    permit_tls_clientcerts (which the caller puts in a listener's restrictions)."""
    entries = ", ".join(f"{pin.removeprefix('SHA256:')}=trusted" for pin in trusted)
    return {
        "smtpd_tls_ask_ccert": "yes",
        "smtpd_tls_CAfile": str(client_ca),
        "smtpd_tls_fingerprint_digest": "sha256",
        "relay_clientcerts": f"inline:{{ {entries} }}",
    }


class RequiringServer:
    """`openssl s_server` with implicit TLS that requires a client certificate from
    `client_ca` (-Verify): a handshake without one ends in a TLS alert. It serves no
    protocol: only the refusal is tested against it."""

    def __init__(self, certs: Certs, client_ca: Path) -> None:
        self.port = free_port()
        self._args = [
            *("openssl", "s_server", "-accept", f"{HOST}:{self.port}", "-naccept", "1000"),
            *("-cert", str(certs.cert_pem), "-key", str(certs.key_pem)),
            *("-CAfile", str(client_ca), "-Verify", "1", "-verify_return_error"),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RequiringServer:
        self._process = subprocess.Popen(
            self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:  # "ACCEPT" once it listens
            if line.startswith(b"ACCEPT"):
                return self
        raise RuntimeError("openssl s_server did not start")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


def encrypt_key(key_pem: Path, target: Path, passphrase: str) -> Path:
    """`key_pem` (unencrypted) written to `target` encrypted with `passphrase` (PKCS#8,
    the best encryption available): a client key that needs the passphrase chain."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
    encryption = serialization.BestAvailableEncryption(passphrase.encode())
    target.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    target.chmod(0o600)
    return target
