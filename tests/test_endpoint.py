"""The resolved endpoint and the server settings it comes from: a SOCKS5 URL's password
(the `proxy` key) never shows in their repr, wherever one ends up (a --debug report, an
assertion, a log of the value)."""

from __future__ import annotations

from mailcli.endpoint import ServerSettings
from tests.helpers import make_endpoint

URL = "socks5h://me:Hidden-9@proxy.test:1080"


def test_a_proxy_password_is_not_in_the_endpoints_repr() -> None:
    endpoint = make_endpoint("smtp", 587, user="ann")._replace(proxy=URL)
    shown = repr(endpoint)
    assert "Hidden-9" not in shown and "Hidden-9" not in str((endpoint,))
    assert "proxy='(set)'" in shown
    assert "user='ann'" in shown and "port=587" in shown  # the rest as a NamedTuple shows it
    assert endpoint.proxy == URL  # the value itself is whole


def test_a_proxy_password_is_not_in_the_server_settings_repr() -> None:
    settings = ServerSettings(host="mx.test", proxy=URL)
    assert "Hidden-9" not in repr(settings)
    assert "proxy=None" in repr(ServerSettings(host="mx.test"))
