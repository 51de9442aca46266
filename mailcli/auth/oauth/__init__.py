"""Built-in OAuth2: the providers (Google, Microsoft, custom), the token endpoint
(exchange, refresh, revoke) and the login flows (browser with a loopback listener,
device code, pasted redirect), plus the token store and the bearer source the sessions use.

May import: the base modules and `mailcli.auth` (credentials for the keyring).
Must never import it: the base modules, and nothing at mailcli's start-up: urllib,
http.server and json are imported only on the paths that log in or refresh.
Kept free of code so that importing a module of this package costs nothing more.
"""
