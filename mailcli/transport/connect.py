"""Opening a TCP connection to a server: the one place every command does it.

SMTP (`smtp.wire`), POP3 (`pop3.wire`), `check`'s raw probes and the implicit-TLS
probe (`await_greeting`) all call `open_connection(endpoint)`, so the choices below hold
for every command alike:

- the host may be a name, an IPv4 literal or an IPv6 literal (`resolve_endpoint` has
  taken `[::1]`'s brackets off); every address it resolves to is tried in order;
- `endpoint.family` ("ipv4"/"ipv6", from -4/-6 or the key `family`) keeps the addresses
  of that family only: a name without one is 68, an IP literal of the other family 64;
- `endpoint.source_address` is bound before connecting (msmtp's source_ip); it also
  fixes the family. An address that is not this machine's is 69 (EADDRNOTAVAIL);
- `endpoint.proxy` (a SOCKS5 URL, `transport.socks`) connects to the proxy instead, with
  the family and source address above, and asks it for the server: with socks5 the name
  is resolved here (and the family applies to it), with socks5h the proxy gets the name.
  The proxy unreachable is 69, its refusals as `mailcli.socks` says.

Errors of the connection itself (refused, reset, timed out) are the stdlib's: the
callers map them with `network.error_from_network` as before.

A port that expects TLS from the first byte, reached in clear (`await_greeting`): the
server waits for a ClientHello and sends nothing, so silence is the only signal; after
GREETING_GRACE seconds without a greeting, a second connection (opened the same way)
offers a ClientHello, and a TLS record in answer ends the wait at once: 69 with a hint
naming `--security tls`. Otherwise the wait goes on to the timeout: a slow server is not
cut short.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailcli.errors import (
    HostNotFoundError,
    MailcliError,
    TempFailError,
    UnavailableError,
    UsageError,
)

if TYPE_CHECKING:
    from mailcli.endpoint import AddressFamily, Endpoint
    from mailcli.transcript import Transcript
    from mailcli.transport.socks import ProxyURL

GREETING_GRACE = 2.0  # seconds of silence before asking whether the port expects TLS
# Ports that greet in clear by definition: never probed (a ClientHello before the banner
# is what postscreen's pregreet test punishes on port 25).
GREETING_FIRST_PORTS = frozenset({25, 110, 143, 587, 2525})
_FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def open_connection(
    endpoint: Endpoint, transcript: Transcript | None = None, timeout: float | None = None
) -> socket.socket:
    """A connected socket to the endpoint's server (through its proxy, if it has one),
    blocking with `timeout` (default: the endpoint's)."""
    seconds = endpoint.timeout if timeout is None else timeout
    target = endpoint.where
    if not endpoint.proxy:
        if transcript is not None:
            transcript.info(f"connecting to {target}")
        return _connect(endpoint.host, endpoint.port, endpoint, seconds)
    from mailcli.transport.socks import parse_proxy_url

    proxy = parse_proxy_url(endpoint.proxy)
    if transcript is not None:
        transcript.info(f"connecting to {target}")
        transcript.info(f"via {proxy.scheme} {proxy.where}")
    return _through_proxy(proxy, endpoint, seconds)


def _through_proxy(proxy: ProxyURL, endpoint: Endpoint, seconds: float) -> socket.socket:
    from mailcli.network import ServerTooSlow
    from mailcli.transport.socks import negotiate

    host = endpoint.host
    if not proxy.remote_dns:  # socks5: the name is resolved here, the proxy gets an address
        host = str(_addresses(host, endpoint.port, endpoint)[0][4][0])
    try:
        sock = _connect(proxy.host, proxy.port, endpoint, seconds)
    except OSError as exc:
        raise UnavailableError(
            f"cannot connect to the SOCKS5 proxy {proxy.where}: "
            f"{exc.strerror or exc or type(exc).__name__}"
        ) from None
    try:
        negotiate(sock, proxy, host, endpoint.port, seconds)
    except ServerTooSlow as exc:
        sock.close()
        raise TempFailError(f"the SOCKS5 proxy {proxy.where} is too slow: {exc}") from None
    except TimeoutError:
        sock.close()
        raise TempFailError(
            f"the SOCKS5 proxy {proxy.where} did not answer within {seconds:g} s",
            hint="a slow proxy? raise --timeout",
        ) from None
    except OSError as exc:
        sock.close()
        raise UnavailableError(
            f"the SOCKS5 proxy {proxy.where} failed during the handshake: {exc.strerror or exc}"
        ) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(host: str, port: int, endpoint: Endpoint, seconds: float) -> socket.socket:
    """Each address of HOST:PORT in turn, as socket.create_connection, bound to the
    source address first if there is one; the last failure if none connects."""
    failure: OSError | None = None
    for family, kind, proto, _, address in _addresses(host, port, endpoint):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(seconds)
            if endpoint.source_address:
                _bind(sock, endpoint.source_address)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert failure is not None  # _addresses returns at least one, or raises
    raise failure


def _bind(sock: socket.socket, source: str) -> None:
    try:
        sock.bind((source, 0))
    except OSError as exc:
        raise UnavailableError(
            f"cannot connect from source address {source}: {exc.strerror}",
            hint="--source-address (source_address) must be an address of this machine",
        ) from None


def server_addresses(endpoint: Endpoint) -> list[str]:
    """The server's addresses a direct connection tries, in order (-4/-6 and the source
    address applied; an IPv6 one without brackets). Raises as `open_connection` would."""
    return [str(info[4][0]) for info in _addresses(endpoint.host, endpoint.port, endpoint)]


def _addresses(host: str, port: int, endpoint: Endpoint) -> Sequence[_AddrInfo]:
    """What HOST resolves to, of the family the endpoint's -4/-6 and source address
    allow. HostNotFoundError (68) when nothing does, UsageError (64) when an IP literal
    contradicts them."""
    family = _wanted_family(endpoint)
    literal = _literal_family(host)
    if family != socket.AF_UNSPEC and literal not in (None, family):
        raise UsageError(
            f"{host} is an {_NAMES[literal]} address, but the connection must use "
            f"{_NAMES[family]} ({_why(endpoint)})"
        )
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        detail = f" {_NAMES[family]}" if family != socket.AF_UNSPEC else ""
        raise HostNotFoundError(
            f"cannot resolve host {host!r} to an{detail} address: {exc.strerror}"
        ) from None
    except UnicodeError:  # the stdlib's IDNA encoding refused it: an empty or long label
        raise HostNotFoundError(f"cannot resolve host {host!r}: not a valid host name") from None


def _wanted_family(endpoint: Endpoint) -> socket.AddressFamily:
    """AF_UNSPEC unless -4/-6 or the source address's family says; they must agree."""
    wanted = _FAMILIES[endpoint.family] if endpoint.family else socket.AF_UNSPEC
    source = _literal_family(endpoint.source_address) if endpoint.source_address else None
    if source is None:
        return wanted
    if wanted not in (socket.AF_UNSPEC, source):
        raise UsageError(
            f"source address {endpoint.source_address} is {_NAMES[source]}, but "
            f"{_option(endpoint.family)} asks for {_NAMES[wanted]}"
        )
    return source


def _literal_family(host: str) -> socket.AddressFamily | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.partition("%")[0])  # fe80::1%eth0: a zone
        except OSError:
            continue
        return family
    return None


def _why(endpoint: Endpoint) -> str:
    if endpoint.family:
        return _option(endpoint.family)
    return f"the source address is {endpoint.source_address}"


def _option(family: AddressFamily | None) -> str:
    return "-6 (family = ipv6)" if family == "ipv6" else "-4 (family = ipv4)"


def await_greeting(
    sock: socket.socket, endpoint: Endpoint, timeout: float | None, transcript: Transcript
) -> None:
    """Wait, within `timeout`, until a cleartext greeting starts to arrive on `sock`.

    Raises UnavailableError when the port expects TLS from the first byte (a TLS record
    arrives, or a ClientHello on a second connection is answered in TLS), TimeoutError
    when nothing arrives at all."""
    where = endpoint.where
    started = time.monotonic()
    probe = (
        timeout is not None
        and timeout > GREETING_GRACE
        and endpoint.port not in GREETING_FIRST_PORTS
    )
    if probe and not _readable(sock, GREETING_GRACE):
        transcript.info(f"no greeting after {GREETING_GRACE:g} s: does the port expect TLS?")
        if _answers_client_hello(endpoint, GREETING_GRACE):
            raise _expects_tls(where)
    left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
    if not _readable(sock, left):
        raise TimeoutError("no greeting")
    if _is_tls_record(sock.recv(3, socket.MSG_PEEK)):
        raise _expects_tls(where)


def _expects_tls(where: str) -> UnavailableError:
    return UnavailableError(
        f"{where} expects TLS from the first byte (implicit TLS) and sends no greeting in clear",
        hint="use --security tls (ports 465 and 995 are usually implicit TLS)",
    )


def _readable(sock: socket.socket, seconds: float | None) -> bool:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(seconds))


def _is_tls_record(head: bytes) -> bool:
    """An alert (21) or handshake (22) record of TLS/SSL 3.x: what no greeting starts with."""
    return len(head) >= 2 and head[0] in (21, 22) and head[1] == 3


def _answers_client_hello(endpoint: Endpoint, seconds: float) -> bool:
    """Send a ClientHello on a new connection (made as the first was: same source, same
    proxy); True if a TLS record comes back. Nothing else is sent (no certificate is
    checked: the answer's first bytes are all we read)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=endpoint.host)
    with contextlib.suppress(ssl.SSLWantReadError):  # the ClientHello is now in `outgoing`
        tls.do_handshake()
    deadline = time.monotonic() + seconds
    try:
        with open_connection(endpoint, timeout=seconds) as probe:
            probe.sendall(outgoing.read())
            head = b""
            while len(head) < 3 and (left := deadline - time.monotonic()) > 0:
                probe.settimeout(left)
                chunk = probe.recv(3 - len(head))
                if not chunk:
                    break
                head += chunk
    except (OSError, MailcliError):
        return False
    return _is_tls_record(head)
