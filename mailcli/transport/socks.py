"""A SOCKS5 client (RFC 1928) with username/password authentication (RFC 1929).

Only what a mail client needs: CONNECT to one server through one proxy, over a socket
`transport.connect` has already connected to the proxy. Imported only when a proxy is
configured.

The URL: `socks5://[USER[:PASSWORD]@]HOST[:PORT]` (the server's name resolved here, the
proxy gets an address) or `socks5h://...` (the proxy resolves the name: what Tor and a
bastion that knows internal names need). USER and PASSWORD are percent-decoded; the port
defaults to 1080. The password is a secret: `ProxyURL`'s repr hides it, and no error
or transcript line names it (they name the proxy by `where`, its HOST:PORT).

Failures, each a MailcliError with its exit status:
| cause                                                  | exit |
|--------------------------------------------------------|------|
| malformed URL, unknown scheme, user or password > 255  | 78   |
| socks5h: the server's name is no valid host name       | 68   |
| the proxy wants a user name and password, or refuses   | 77   |
| the proxy refuses or cannot reach the server (its code)| 69   |
| the peer does not speak SOCKS5                         | 69   |
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from mailcli.endpoint import host_port
from mailcli.errors import (
    ConfigError,
    HostNotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from mailcli.network import Pace, PacedReader

DEFAULT_PORT = 1080
SCHEMES = ("socks5", "socks5h")
_VERSION = 5
_NO_AUTH, _USER_PASSWORD, _NO_ACCEPTABLE = 0x00, 0x02, 0xFF
_CONNECT = 0x01
_IPV4, _DOMAIN, _IPV6 = 0x01, 0x03, 0x04
# RFC 1928 section 6: what a reply's REP field means.
REPLY_MEANINGS = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class ProxyURL(NamedTuple):
    """A parsed proxy URL. `remote_dns`: socks5h, the proxy resolves the server's name."""

    remote_dns: bool
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def where(self) -> str:
        return host_port(self.host, self.port)

    @property
    def scheme(self) -> str:
        return "socks5h" if self.remote_dns else "socks5"

    @property
    def shown(self) -> str:
        """The URL as it may be shown: the password as ***."""
        user = "" if self.username is None else self.username
        user += ":***" if self.password is not None else ""
        return f"{self.scheme}://{user + '@' if user else ''}{self.where}"

    def __repr__(self) -> str:  # never the password, wherever this ends up
        return f"ProxyURL({self.shown})"


def shown_proxy_url(setting: str) -> str:
    """A proxy setting as `account show` may print it: "env" as itself, a URL without
    its password, a URL that does not parse as "(set)" (it might hold one anywhere)."""
    if setting == "env":
        return setting
    try:
        return parse_proxy_url(setting).shown
    except ConfigError:
        return "(set)"


def parse_proxy_url(url: str) -> ProxyURL:
    """`url` checked and split; ConfigError (78) naming what is wrong, never the URL
    itself (it may hold the password)."""
    from urllib.parse import unquote

    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        raise ConfigError(
            "proxy: the URL must start with socks5:// or socks5h:// (no other proxy kind "
            "is supported)"
        )
    userinfo, _, hostport = rest.rstrip("/").rpartition("@")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret) if colon else None
        _check_length("user name", username)
        _check_length("password", password)
    host, port = _split_host_port(hostport)
    return ProxyURL(scheme.lower() == "socks5h", host, port, username, password)


def _check_length(what: str, value: str | None) -> None:
    if value is not None and len(value.encode()) > 255:
        raise ConfigError(f"proxy: the {what} is longer than SOCKS5 allows (255 octets)")


def _split_host_port(hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [IPv6]:port
        host, bracket, after = hostport[1:].partition("]")
        if not bracket or after[:1] not in ("", ":"):
            raise ConfigError("proxy: write an IPv6 address as [ADDRESS]:PORT")
        port_text = after.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise ConfigError("proxy: the URL names no proxy host")
    if not port_text:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ConfigError(f"proxy: {port_text!r} is not a port number")
    return host, int(port_text)


def negotiate(sock: socket.socket, proxy: ProxyURL, host: str, port: int, timeout: float) -> None:
    """Ask the proxy on `sock` to connect to HOST:PORT (an address, or with socks5h a
    name the proxy resolves). Returns when the tunnel is open: what follows is the
    server's. Each of the proxy's replies must be whole within `timeout`, as a server's
    (`network.Pace`): TimeoutError when none came, ServerTooSlow when it dribbles."""
    pace = Pace(timeout)
    methods = [_NO_AUTH, _USER_PASSWORD] if proxy.username is not None else [_NO_AUTH]
    sock.sendall(bytes([_VERSION, len(methods), *methods]))
    version, method = _receive(sock, 2, proxy, pace)
    if version != _VERSION:
        raise _not_socks(proxy)
    if method == _USER_PASSWORD and proxy.username is not None:
        _authenticate(sock, proxy, pace)
    elif method != _NO_AUTH:
        raise _no_method(proxy)
    sock.sendall(bytes([_VERSION, _CONNECT, 0]) + _address(host) + struct.pack("!H", port))
    _read_connect_reply(sock, proxy, host_port(host, port), pace)


def _authenticate(sock: socket.socket, proxy: ProxyURL, pace: Pace) -> None:
    """RFC 1929: version 1, the user name and the password, each with its length."""
    user = (proxy.username or "").encode()
    secret = (proxy.password or "").encode()
    sock.sendall(bytes([1, len(user)]) + user + bytes([len(secret)]) + secret)
    _, status = _receive(sock, 2, proxy, pace)
    if status != 0:
        raise PermissionDeniedError(
            f"the SOCKS5 proxy {proxy.where} refused the user name and password"
        )


def _address(host: str) -> bytes:
    """ATYP and DST.ADDR: an IP literal as its octets, a name as itself (socks5h)."""
    for family, kind in ((socket.AF_INET, _IPV4), (socket.AF_INET6, _IPV6)):
        try:
            return bytes([kind]) + socket.inet_pton(family, host)
        except OSError:
            continue
    try:  # as DNS would take it: a name with an empty or overlong label is no name
        name = host.encode("idna")
    except UnicodeError:
        raise HostNotFoundError(f"cannot resolve host {host!r}: not a valid host name") from None
    if len(name) > 255:
        raise HostNotFoundError(f"cannot resolve host {host[:40]!r}...: longer than 255 octets")
    return bytes([_DOMAIN, len(name)]) + name


def _read_connect_reply(sock: socket.socket, proxy: ProxyURL, target: str, pace: Pace) -> None:
    version, reply, _, kind = _receive(sock, 4, proxy, pace)
    if version != _VERSION:
        raise _not_socks(proxy)
    if reply != 0:
        meaning = REPLY_MEANINGS.get(reply, "unknown reply code")
        raise UnavailableError(
            f"the SOCKS5 proxy {proxy.where} could not connect to {target}: "
            f"{meaning} (reply {reply})"
        )
    if kind == _DOMAIN:
        (length,) = _receive(sock, 1, proxy, pace, more=True)
    else:
        length = {_IPV4: 4, _IPV6: 16}.get(kind, -1)
        if length < 0:
            raise _not_socks(proxy)
    _receive(sock, length + 2, proxy, pace, more=True)  # its address for the tunnel: unused


def _receive(
    sock: socket.socket, count: int, proxy: ProxyURL, pace: Pace, *, more: bool = False
) -> bytes:
    """Exactly `count` octets from the proxy: a reply's start, or with `more` the rest of
    the reply being read; a proxy hanging up mid-reply is 69."""
    if not more:
        pace.reply()
    reader, data = PacedReader(sock, pace), b""
    while len(data) < count:  # never more than asked: what follows the reply is the server's
        chunk = reader.read(count - len(data))
        if not chunk:
            raise UnavailableError(
                f"the SOCKS5 proxy {proxy.where} closed the connection during the handshake"
            )
        data += chunk
    return data


def _no_method(proxy: ProxyURL) -> PermissionDeniedError:
    """The proxy chose none of the methods offered: it wants a login we lack, or one we
    cannot do (GSSAPI)."""
    if proxy.username is None:
        return PermissionDeniedError(
            f"the SOCKS5 proxy {proxy.where} requires a user name and password",
            hint="put them in the proxy URL of the config file: socks5://USER:PASSWORD@HOST:PORT",
        )
    return PermissionDeniedError(
        f"the SOCKS5 proxy {proxy.where} accepts neither no authentication nor a user name "
        "and password"
    )


def _not_socks(proxy: ProxyURL) -> UnavailableError:
    return UnavailableError(
        f"{proxy.where} does not answer as a SOCKS5 proxy",
        hint="check the proxy URL's host and port",
    )
