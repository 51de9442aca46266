"""The per-run state the commands share: global options, config, output, transcript."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from mailcli.auth.credentials import Secret, get_password
from mailcli.config import Account, Config, load_config
from mailcli.endpoint import ConnectionOptions, Endpoint, resolve_endpoint
from mailcli.render import OutputMode, Renderer
from mailcli.transcript import Transcript


@dataclass
class AppContext:
    """Global options (settable before or after the command name) and lazy resources."""

    account_name: str | None = None
    config_path: Path | None = None
    trace: bool = False
    trace_data: bool = False
    trace_time: bool = False
    json: bool = False
    quiet: bool = False
    debug: bool = False
    quit_after: str | None = None  # --quit-after PHASE of send, POP3 commands, check
    _config: Config | None = field(default=None, repr=False)
    _renderer: Renderer | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def account(self) -> Account | None:
        return self.config.select_account(self.account_name)

    @property
    def out(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(OutputMode.detect(json_output=self.json, quiet=self.quiet))
        return self._renderer

    def endpoint(self, protocol: str, options: ConnectionOptions) -> Endpoint:
        endpoint = resolve_endpoint(protocol, self.account, options)
        if endpoint.insecure:
            self.out.warning("--insecure: the server's certificate will not be verified")
        return endpoint

    def transcript(self) -> Transcript:
        sink = self.out.trace if (self.trace or self.trace_data or self.trace_time) else None
        return Transcript(sink, show_data=self.trace_data, show_time=self.trace_time)

    def password(self, endpoint: Endpoint) -> Secret:
        """The credential chain; a person is asked only when stdin is a terminal."""
        prompter = TerminalPrompter() if sys.stdin.isatty() else None
        return get_password(
            endpoint.credential_key,
            password_command=endpoint.password_command,
            environ=os.environ,
            prompter=prompter,
        )


class TerminalPrompter:
    """Asks on the terminal (stderr), never echoing the password."""

    def ask_password(self, key: str) -> str:
        return str(click.prompt(f"Password for {key}", hide_input=True, err=True))

    def offer_to_store(self, key: str) -> bool:
        return click.confirm(f"Store it in the keyring for {key}?", default=False, err=True)


def app_context() -> AppContext:
    """The AppContext of the running command (created by the group)."""
    return click.get_current_context().ensure_object(AppContext)
