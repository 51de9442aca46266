"""The per-run state the commands share: global options, config, terminal, output,
transcript.

Created by `main` before click parses anything (so the error handler can read `--debug`
and `-q` from it), on every run including `--version`: importing this module costs no
more than its own lines. The config, the credential chain, the endpoint rules, the
renderer and the transcript are imported when a command first asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mailcli.auth.credential import Credential
    from mailcli.auth.credentials import Secret
    from mailcli.config import Account, Config
    from mailcli.endpoint import ConnectionOptions, Endpoint, MailProtocol
    from mailcli.render import Renderer, Terminal
    from mailcli.transcript import Transcript


class AppContext:
    """Global options (settable before or after the command name) and lazy resources."""

    def __init__(self) -> None:
        self.account_name: str | None = None
        self.config_path: str | None = None  # --config / $MAILCLI_CONFIG, as given
        self.trace = False
        self.trace_data = False
        self.trace_time = False
        self.json = False
        self.quiet = False
        self.debug = False
        self.quit_after: str | None = None  # --quit-after PHASE of send, POP3 commands, check
        self._config: Config | None = None
        self._terminal: Terminal | None = None
        self._renderer: Renderer | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def account(self) -> Account | None:
        if self._config is None and self.account_name is None and not self._may_have_config():
            return None  # what an empty Config selects, without importing mailcli.config
        return self.config.select_account(self.account_name)

    def _may_have_config(self) -> bool:
        """False only when no --config is given and the default file is certainly absent:
        anything else (it exists, or cannot be checked) is load_config's to report."""
        if self.config_path is not None:
            return True
        try:
            os.stat(default_config_file())
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return True

    @property
    def terminal(self) -> Terminal:
        """The streams and what they are connected to, asked once (`render.Terminal`)."""
        if self._terminal is None:
            from mailcli.render import Terminal

            self._terminal = Terminal.detect()
        return self._terminal

    @property
    def out(self) -> Renderer:
        if self._renderer is None:
            self._renderer = self.terminal.renderer(json_output=self.json, quiet=self.quiet)
        return self._renderer

    def endpoint(self, protocol: MailProtocol, options: ConnectionOptions) -> Endpoint:
        from mailcli.endpoint import resolve_endpoint

        endpoint = resolve_endpoint(protocol, self.account, options)
        if endpoint.insecure:
            self.out.warning("--insecure: the server's certificate will not be verified")
        return self.with_key_passphrase(endpoint)

    def with_key_passphrase(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` whose client key, if encrypted, asks `key_passphrase`."""
        key = endpoint.client_key or endpoint.client_cert
        if key is None:
            return endpoint
        return endpoint._replace(client_key_passphrase=lambda: self.key_passphrase(key))

    def transcript(self) -> Transcript:
        from mailcli.transcript import Transcript

        sink = self.out.trace if (self.trace or self.trace_data or self.trace_time) else None
        return Transcript(sink, show_data=self.trace_data, show_time=self.trace_time)

    def credential(self, endpoint: Endpoint) -> Credential:
        """What a session authenticates with: an OAuth2 bearer source when the account
        has an oauth2 table (the OAuth modules imported only then), else the password
        from the credential chain, asked for when the session needs it."""
        account = self.account
        if account is not None and account.oauth2 is not None:
            from mailcli.auth.oauth.access import OAuthBearer

            return OAuthBearer(account.name, account.oauth2)
        from mailcli.auth.credential import Password

        return Password(lambda: self.password(endpoint).value)

    def password(self, endpoint: Endpoint) -> Secret:
        """The credential chain; a person is asked only when stdin is a terminal."""
        from mailcli.auth.credentials import get_password

        prompter = TerminalPrompter() if self.terminal.stdin_tty else None
        return get_password(
            endpoint.credential_key,
            password_command=endpoint.password_command,
            environ=os.environ,
            prompter=prompter,
        )

    def key_passphrase(self, key_file: str) -> str:
        """An encrypted client key's passphrase: MAILCLI_CLIENT_KEY_PASSPHRASE, else the
        keyring entry `client-key:ABSOLUTE-PATH` (service mailcli), else a prompt on a
        terminal; else 78 naming them. Never the mail password's sources."""
        from mailcli.auth.credentials import ENV_VAR, get_password
        from mailcli.errors import CredentialsError

        name = f"client-key:{os.path.abspath(key_file)}"
        environ = {**os.environ, ENV_VAR: os.environ.get(PASSPHRASE_VAR, "")}
        prompter = TerminalPrompter() if self.terminal.stdin_tty else None
        try:
            return get_password(
                name, password_command=None, environ=environ, prompter=prompter
            ).value
        except CredentialsError:
            raise CredentialsError(
                f"--client-key {key_file} is encrypted and no passphrase was found: set "
                f"{PASSPHRASE_VAR}, or store it with `mailcli password set {name}`"
            ) from None


def default_config_file(environ: Mapping[str, str] = os.environ) -> str:
    """mailcli.config.default_config_path as a str, without importing pathlib (and
    mailcli.config) on a run that has no config file."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mailcli", "config.toml")


def load_config(path: str | None) -> Config:
    """mailcli.config.load_config, imported on first use (the tests patch this name)."""
    from pathlib import Path

    from mailcli.config import load_config as load

    return load(Path(path) if path is not None else None)


PASSPHRASE_VAR = "MAILCLI_CLIENT_KEY_PASSPHRASE"


class TerminalPrompter:
    """Asks on the terminal (stderr), never echoing the password."""

    def ask_password(self, key: str) -> str:
        return str(click.prompt(f"Password for {key}", hide_input=True, err=True))

    def offer_to_store(self, key: str) -> bool:
        return click.confirm(f"Store it in the keyring for {key}?", default=False, err=True)
