"""Where each OAuth2 provider keeps its endpoints, which scopes mail needs, and how a
user registers the app mailcli logs in as (mailcli ships no client IDs: Google's terms
forbid embedding them in open-source projects).

Facts (the providers' documentation):
- Google: scope https://mail.google.com/ (IMAP, POP, SMTP); a "Desktop app" client;
  authorization code + PKCE + loopback redirect; `access_type=offline` and
  `prompt=consent` so a refresh token comes back. The device flow is refused for this
  scope (`invalid_scope`), and the out-of-band copy-paste redirect is gone since 2023.
- Microsoft: the `/{tenant}/oauth2/v2.0/` endpoints; POP and SMTP scopes plus
  `offline_access`; both the code flow (redirect http://localhost:PORT, the port is
  ignored when matching) and the device flow.
- custom: every URL from the settings (the test authorization server is one).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple, Protocol

from mailcli.errors import ConfigError

if TYPE_CHECKING:
    from mailcli.config import OAuthProvider

GOOGLE_SCOPES = ("https://mail.google.com/",)
MICROSOFT_SCOPES = (
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
MICROSOFT_BASE = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/"
# A tenant goes into a URL path: a name (common, organizations, consumers, a domain) or an ID.
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,99}")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ProviderSettings(Protocol):
    """What resolve_provider reads: the fields of `mailcli.config.OAuthSettings`."""

    @property
    def provider(self) -> OAuthProvider: ...
    @property
    def tenant(self) -> str: ...
    @property
    def authorize_url(self) -> str | None: ...
    @property
    def token_url(self) -> str | None: ...
    @property
    def device_url(self) -> str | None: ...
    @property
    def revoke_url(self) -> str | None: ...
    @property
    def scopes(self) -> tuple[str, ...] | None: ...


class Provider(NamedTuple):
    """One provider's endpoints and what to ask it for."""

    name: OAuthProvider
    authorize_url: str
    token_url: str
    device_url: str | None
    revoke_url: str | None
    scopes: tuple[str, ...]
    device_allowed: bool  # False for google: its device endpoint refuses the mail scope
    extra_authorize: tuple[tuple[str, str], ...]  # google: access_type=offline, prompt=consent


def _google() -> Provider:
    return Provider(
        name="google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        device_url=None,
        revoke_url="https://oauth2.googleapis.com/revoke",
        scopes=GOOGLE_SCOPES,
        device_allowed=False,
        extra_authorize=(("access_type", "offline"), ("prompt", "consent")),
    )


def _microsoft(tenant: str) -> Provider:
    if not _TENANT.fullmatch(tenant):
        raise ConfigError(
            f"oauth2.tenant {tenant!r} is not a tenant name or ID",
            hint='use "common", "organizations", "consumers", a domain or a tenant ID',
        )
    base = MICROSOFT_BASE.format(tenant=tenant)
    return Provider(
        name="microsoft",
        authorize_url=base + "authorize",
        token_url=base + "token",
        device_url=base + "devicecode",
        revoke_url=None,  # Microsoft has no RFC 7009 endpoint for refresh tokens
        scopes=MICROSOFT_SCOPES,
        device_allowed=True,
        extra_authorize=(),
    )


def _custom(settings: ProviderSettings) -> Provider:
    missing = [key for key in ("authorize_url", "token_url") if not getattr(settings, key, None)]
    if missing:
        raise ConfigError(
            f"oauth2 provider 'custom' needs {' and '.join(missing)}",
            hint="set them in the account's [accounts.NAME.oauth2] table",
        )
    return Provider(
        name="custom",
        authorize_url=settings.authorize_url or "",
        token_url=settings.token_url or "",
        device_url=settings.device_url,
        revoke_url=settings.revoke_url,
        scopes=(),
        device_allowed=settings.device_url is not None,
        extra_authorize=(),
    )


def resolve_provider(settings: ProviderSettings) -> Provider:
    """The provider an account's oauth2 table names, with its overrides applied.

    ConfigError (78) for an unknown provider, a custom one without its URLs, or a URL
    that is neither https nor http on a loopback host."""
    if settings.provider == "google":
        base = _google()
    elif settings.provider == "microsoft":
        base = _microsoft(settings.tenant)
    elif settings.provider == "custom":
        base = _custom(settings)
    else:  # settings not read by mailcli.config, which refuses other names
        from mailcli.config import OAUTH2_PROVIDERS

        raise ConfigError(
            f"unknown oauth2 provider {settings.provider!r}",
            hint=f"use one of: {', '.join(OAUTH2_PROVIDERS)}",
        )
    device_url = settings.device_url or base.device_url
    provider = base._replace(
        authorize_url=settings.authorize_url or base.authorize_url,
        token_url=settings.token_url or base.token_url,
        device_url=device_url,
        revoke_url=settings.revoke_url or base.revoke_url,
        scopes=base.scopes if settings.scopes is None else tuple(settings.scopes),
        device_allowed=base.device_allowed and device_url is not None,
    )
    for what in ("authorize_url", "token_url", "device_url", "revoke_url"):
        url = getattr(provider, what)
        if url is not None:
            require_secure_url(url, what)
    return provider


def require_secure_url(url: str, what: str) -> None:
    """https, or http to a loopback host (a local test server); ConfigError (78) otherwise.

    Tokens, codes and client secrets travel to these URLs: plain http anywhere else
    would hand them to whoever is on the path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return
    raise ConfigError(
        f"oauth2 {what} {url!r} must be an https:// URL",
        hint="http:// is accepted only for 127.0.0.1, localhost and ::1",
    )


_GOOGLE_HELP = """\
Register mailcli with Google (once; mailcli ships no client ID):
 1. https://console.cloud.google.com/ -> create or choose a project.
 2. APIs & Services -> OAuth consent screen: user type External (or Internal for a
    Workspace organisation); add your address as a test user; add the scope
    https://mail.google.com/.
 3. APIs & Services -> Credentials -> Create credentials -> OAuth client ID ->
    Application type "Desktop app". Copy the client ID and the client secret (Google
    issues one even to desktop apps; it is not confidential).
 4. In the account's [accounts.NAME.oauth2] table: provider = "google",
    client_id = "...", client_secret = "..." (or client_secret_command).
While the project's publishing status is "Testing", Google expires its refresh tokens
after 7 days: publish the app (OAuth consent screen -> Publish app; for a personal
project you may keep it unverified and click through the warning once) so that
`mailcli oauth login` lasts.
Google does not allow the device flow for mail: use the browser (on a headless host,
`ssh -L PORT:127.0.0.1:PORT` and `mailcli oauth login --port PORT`) or --paste."""

_MICROSOFT_HELP = """\
Register mailcli with Microsoft (once; mailcli ships no client ID):
 1. https://entra.microsoft.com/ -> Identity -> Applications -> App registrations ->
    New registration. Supported account types: as your mailbox needs (personal
    Outlook.com accounts need "... and personal Microsoft accounts").
 2. Authentication -> Add a platform -> "Mobile and desktop applications" -> redirect URI
    http://localhost (the port is ignored when matching).
 3. Authentication -> Advanced settings -> "Allow public client flows": Yes (for --device).
 4. API permissions -> Add a permission -> APIs my organization uses -> Office 365
    Exchange Online (or Microsoft Graph for offline_access) -> delegated
    POP.AccessAsUser.All, SMTP.Send, and offline_access.
 5. In the account's [accounts.NAME.oauth2] table: provider = "microsoft",
    client_id = "<Application (client) ID>", tenant = "common" (or "organizations",
    "consumers", your tenant ID).
The mailbox must also allow it: SMTP AUTH enabled for the user (Exchange admin center ->
the mailbox -> Email apps -> Authenticated SMTP) and POP enabled."""

_CUSTOM_HELP = """\
A custom provider: register a public client (authorization code with PKCE, loopback
redirect http://127.0.0.1:PORT/) with your authorization server, then set provider =
"custom", client_id, authorize_url, token_url (https), and optionally device_url,
revoke_url and scopes in the account's [accounts.NAME.oauth2] table."""


def registration_help(provider_name: OAuthProvider) -> str:
    """The steps to register an app with `provider_name`."""
    return {"google": _GOOGLE_HELP, "microsoft": _MICROSOFT_HELP}.get(provider_name, _CUSTOM_HELP)
