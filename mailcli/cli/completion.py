"""`mailcli completion SHELL`: print the shell's completion script, for installed users who
never see the repository's completions/ (which is generated from this command)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
# The names the shell will type and the variable click answers on: the same whether this
# runs as `mailcli`, `python -m mailcli` or through a `sendmail` link.
PROG_NAME = "mailcli"
COMPLETE_VAR = "_MAILCLI_COMPLETE"


@click.command()
@click.argument("shell", metavar="SHELL", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL; install it once:

    \b
    bash: mailcli completion bash > ~/.local/share/bash-completion/completions/mailcli
    zsh:  mailcli completion zsh > DIR/_mailcli  (DIR: any directory on $fpath)
    fish: mailcli completion fish > ~/.config/fish/completions/mailcli.fish
    """
    complete_class = get_completion_class(shell)
    if complete_class is None:  # click.Choice only lets SHELLS through; each is built in
        raise click.BadParameter(f"no completion for {shell}", ctx=ctx, param_hint="SHELL")
    script = complete_class(ctx.find_root().command, {}, PROG_NAME, COMPLETE_VAR).source()
    # Bytes, as click writes it for `_MAILCLI_COMPLETE=bash_source`: the two stay identical.
    click.echo(script.encode(), nl=False)
