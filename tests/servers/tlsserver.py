"""A small TLS mail server on 127.0.0.1 that can be as weak as the audit needs.

What the test Postfix and Dovecot cannot show: TLS 1.0 through an OpenSSL security
level 0 context, a certificate about to expire, a chain without its intermediate, a
certificate for another name, a version number in the POP3 banner, and the STARTTLS
injection bug (input pipelined after STLS/STARTTLS kept and answered inside TLS).
SMTP or POP3, STARTTLS/STLS or implicit TLS; each connection runs in its own thread,
every read bounded, `stop()` closes everything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import trustme

from .managed import ManagedServer
from .ports import HOST

READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class ServerCert:
    """A leaf (and what it chains to) written as PEM files; `ca_pem` is the root."""

    ca_pem: Path
    chain_pem: Path  # what the server sends: the leaf, then the intermediate if any
    key_pem: Path


def issue(
    directory: Path,
    name: str,
    *,
    identities: tuple[str, ...] = (HOST, "localhost"),
    days: int | None = None,
    intermediate: bool = False,
    send_intermediate: bool = True,
) -> ServerCert:
    """A root CA and a leaf for `identities` (valid `days` more days if given); with
    `intermediate` the leaf is issued by an intermediate, sent or (a broken server)
    not sent."""
    root = trustme.CA()
    issuer = root.create_child_ca() if intermediate else root
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days is not None else None
    leaf = issuer.issue_cert(*identities, not_after=not_after)
    pems = leaf.cert_chain_pems if send_intermediate else leaf.cert_chain_pems[:1]
    cert = ServerCert(
        directory / f"{name}-ca.pem", directory / f"{name}-chain.pem", directory / f"{name}-key.pem"
    )
    root.cert_pem.write_to_path(str(cert.ca_pem))
    cert.chain_pem.write_bytes(b"".join(blob.bytes() for blob in pems))
    leaf.private_key_pem.write_to_path(str(cert.key_pem))
    return cert


def server_context(cert: ServerCert, *, oldest: str = "TLSv1_2") -> ssl.SSLContext:
    """A server context presenting `cert`, accepting `oldest` (e.g. "TLSv1") and up,
    with every suite this OpenSSL has (security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = getattr(ssl.TLSVersion, oldest)
    context.load_cert_chain(str(cert.chain_pem), str(cert.key_pem))
    return context


class TlsServer(ManagedServer):
    """`protocol` "pop3" or "smtp"; `implicit` TLS from the first byte, else STLS /
    STARTTLS; `keep_pipelined`: the injection bug; `greeting` without its line end."""

    host = HOST

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        protocol: str = "pop3",
        implicit: bool = False,
        keep_pipelined: bool = False,
        greeting: bytes | None = None,
    ) -> None:
        self.context = context
        self.protocol = protocol
        self.implicit = implicit
        self.keep_pipelined = keep_pipelined
        self.greeting = greeting or (
            b"+OK POP3 ready." if protocol == "pop3" else b"220 tlsserver ESMTP"
        )
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the thread blocked in accept()
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(READ_TIMEOUT)
        with contextlib.suppress(OSError, ValueError), contextlib.closing(sock):
            if self.implicit:
                tls = self.context.wrap_socket(sock, server_side=True)
                self._sockets.append(tls)
                tls.sendall(self.greeting + b"\r\n")
                _Session(self, tls, b"", encrypted=True).run()
            else:
                sock.sendall(self.greeting + b"\r\n")
                _Session(self, sock, b"", encrypted=False).run()


class _Session:
    """One connection's command loop: just enough POP3 or SMTP for the probes."""

    def __init__(self, server: TlsServer, sock: socket.socket, buffer: bytes, encrypted: bool):
        self.server, self.sock, self.buffer, self.encrypted = server, sock, buffer, encrypted

    def run(self) -> None:
        while (line := self._line()) is not None:
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"QUIT":
                self.sock.sendall(b"+OK bye\r\n" if self._pop3 else b"221 bye\r\n")
                return
            if verb in (b"STLS", b"STARTTLS") and not self.encrypted:
                self._start_tls()
                continue
            self.sock.sendall(self._answer(verb))

    @property
    def _pop3(self) -> bool:
        return self.server.protocol == "pop3"

    def _answer(self, verb: bytes) -> bytes:
        starttls = b"" if self.encrypted else (b"STLS\r\n" if self._pop3 else b"250-STARTTLS\r\n")
        if self._pop3:
            answers = {
                b"CAPA": b"+OK\r\n" + starttls + b"USER\r\n.\r\n",
                b"USER": b"+OK\r\n",
                b"PASS": b"-ERR [AUTH] Authentication failed.\r\n",
            }
            return answers.get(verb, b"-ERR unknown command\r\n")
        if verb in (b"EHLO", b"HELO"):
            return b"250-tlsserver\r\n" + starttls + b"250 8BITMIME\r\n"
        return b"502 5.5.2 unknown command\r\n"

    def _start_tls(self) -> None:
        self.sock.sendall(b"+OK Begin TLS\r\n" if self._pop3 else b"220 2.0.0 Ready\r\n")
        # The bug under test: what the client pipelined after STLS, read in clear,
        # stays in the buffer and is answered inside TLS.
        kept = self.buffer if self.server.keep_pipelined else b""
        self.sock = self.server.context.wrap_socket(self.sock, server_side=True)
        self.server._sockets.append(self.sock)
        self.buffer, self.encrypted = kept, True

    def _line(self) -> bytes | None:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")
