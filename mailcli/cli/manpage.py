"""Man pages generated from the click definitions, so that they say what `--help` says.

`python -m mailcli.cli.manpage DIR` writes DIR/mailcli.1 and one page per command and
per subcommand, named by its path as git names its pages (`mailcli-queue-run.1` is
`mailcli queue run`). NAME, SYNOPSIS, DESCRIPTION, ARGUMENTS, OPTIONS and COMMANDS
come from click: the same help records, usage pieces and help text `--help` prints.
EXIT STATUS is the README's table of exit codes, checked against errors.ExitStatus (each
code, by its name). What else `--help` has no room for (ENVIRONMENT, FILES, NOTES,
EXAMPLES) is written by hand in mailcli.cli.manpage_text.

The output is deterministic (no date, no version), so the repository keeps the pages in
man/ and a test regenerates them to check they are current. No command imports this
module: only its `python -m` entry point and the tests do.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import click

from mailcli.cli import manpage_text
from mailcli.cli.main import cli
from mailcli.errors import ExitStatus

REGENERATE = "python -m mailcli.cli.manpage man"
# The exit codes' table is the README's (a checkout's or an sdist's: the generator is a
# tool of the source tree, not of an installed mailcli).
README = Path(__file__).resolve().parents[2] / "README.md"
# Characters whose plain spelling groff may typeset as something else in UTF-8 output
# (a typographic quote, a modifier letter), or that start an escape.
_SPECIAL = {"\\": r"\(rs", "-": r"\-", "'": r"\(aq", "`": r"\(ga", "^": r"\(ha", "~": r"\(ti"}


class Page(NamedTuple):
    """One command of the tree: `path` is ["mailcli", "queue", "run"]."""

    path: list[str]
    command: click.Command
    context: click.Context

    @property
    def name(self) -> str:
        return "-".join(self.path)


def escape(text: str) -> str:
    """`text` as roff prints it, character for character: backslashes, hyphens (as
    `\\-`, the minus an option is typed with), quotes; anything beyond ASCII as its
    code point. A line this produces never starts a request: see `text_lines`."""
    out = []
    for char in text:
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif ord(char) > 127:
            out.append(f"\\[u{ord(char):04X}]")
        elif (ord(char) < 32 and char != "\n") or ord(char) == 127:
            out.append(" ")  # a tab or a control character: no text a page should hold
        else:
            out.append(char)
    return "".join(out)


def text_lines(text: str) -> list[str]:
    """Escaped text lines: each starts with `\\&` so that a leading `.` or `'` is text,
    not a request, and leading blanks do not break the fill."""
    return ["\\&" + escape(line.strip()) for line in text.splitlines() if line.strip()]


def verbatim_lines(text: str) -> list[str]:
    """Lines kept as they are (click's `\\b` paragraphs), inside .nf/.fi."""
    return [".nf", *("\\&" + escape(line) for line in text.splitlines()), ".fi"]


def bold(text: str) -> str:
    return f"\\fB{escape(text)}\\fR"


def walk(command: click.Command, path: list[str], parent: click.Context | None) -> Iterator[Page]:
    """The command and every subcommand under it, depth first in `--help`'s order."""
    context = click.Context(command, info_name=path[-1], parent=parent, **command.context_settings)
    yield Page(path, command, context)
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, [*path, name], context)


def summary(command: click.Command) -> str:
    """The one line NAME gives: the command's short help, or its help's first sentence."""
    return " ".join(command.get_short_help_str(limit=1000).split())


def help_paragraphs(text: str) -> list[str]:
    """Click's help text as roff paragraphs: `\\b` ones verbatim, the rest filled."""
    lines: list[str] = []
    cut = inspect.cleandoc(text).partition("\f")[0]
    for paragraph in re.split(r"\n\s*\n", cut):
        if not paragraph.strip():
            continue
        lines.append(".PP")
        if paragraph.startswith("\b\n") or paragraph == "\b":
            lines += verbatim_lines(paragraph.partition("\n")[2])
        else:
            lines += text_lines(paragraph)
    return lines


def entry(tag: str, body: str) -> list[str]:
    """A term on its own line, its text indented below (as git's pages lay options out)."""
    return [".PP", tag, ".RS 4", *(text_lines(body) or ["\\&"]), ".RE"]


def option_tag(spec: str) -> str:
    """`-a, --account NAME` with the option names bold and their values in italics."""
    parts = re.split(r"(?<![\w-])(-{1,2}[\w][\w-]*)", spec)
    return "\\&" + "".join(bold(part) if i % 2 else _values(part) for i, part in enumerate(parts))


def _values(text: str) -> str:
    """The values between option names (` NAME`, `, `, ` / `): the words in italics."""
    return re.sub(r"[^\s,/]+", lambda word: f"\\fI{escape(word[0])}\\fR", text)


def head(page: Page) -> list[str]:
    title = escape(page.name.upper())
    usage = " ".join(" ".join(page.command.collect_usage_pieces(page.context)).split())
    return [
        f'.\\" Generated from the click definitions by `{REGENERATE}`: do not edit.',
        f'.TH "{title}" "1" "" "mailcli" "mailcli manual"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{escape(page.name)} \\- {escape(summary(page.command))}",
        ".SH SYNOPSIS",
        f"\\&{bold(' '.join(page.path))} {escape(usage)}",
    ]


def description(page: Page) -> list[str]:
    text = page.command.help if page.command.help is not None else summary(page.command)
    return [".SH DESCRIPTION", *help_paragraphs(text)]


def records(page: Page, arguments: bool) -> list[tuple[str, str]]:
    """The help records `--help` lists: its options, or its documented arguments."""
    params = page.command.get_params(page.context)
    chosen = [p for p in params if isinstance(p, click.Argument) == arguments]
    if arguments and not any(getattr(p, "help", None) is not None for p in chosen):
        return []
    found = [p.get_help_record(page.context) for p in chosen]
    return [record for record in found if record is not None]


def parameters(page: Page) -> list[str]:
    lines: list[str] = []
    for title, arguments in (("ARGUMENTS", True), ("OPTIONS", False)):
        found = records(page, arguments)
        if found:
            lines.append(f".SH {title}")
            for spec, text in found:
                lines += entry(option_tag(spec), text)
    return lines


def subcommands(page: Page, children: list[Page]) -> list[str]:
    if not children:
        return []
    lines = [".SH COMMANDS"]
    for child in children:
        text = f"{summary(child.command)} See {child.name}(1)."
        lines += entry(f"\\&{bold(child.path[-1])}", text)
    return lines


def exit_status(page: Page, table: list[str]) -> list[str]:
    """The whole table in mailcli(1); the other pages point there."""
    if page.name == "mailcli":
        return table
    return [".SH EXIT STATUS", *text_lines(manpage_text.EXIT_STATUS_ELSEWHERE)]


class ExitRow(NamedTuple):
    codes: list[int]
    name: str
    when: str


def exit_rows(readme: str) -> tuple[list[str], list[ExitRow]]:
    """The README's "Exit codes" section, markdown removed: its paragraphs, and its
    table's rows. LookupError unless the table holds each errors.ExitStatus, by name."""
    section = readme.partition("\n## Exit codes\n")[2].partition("\n## ")[0]
    paragraphs, rows = [], []
    for block in re.split(r"\n\s*\n", section.strip()):
        if not block.startswith("|"):
            paragraphs.append(plain(block))
            continue
        for line in block.splitlines()[2:]:  # after the heading and the |---| line
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            if len(cells) != 3 or not re.fullmatch(r"\d+(, \d+)*", cells[0]):
                raise LookupError(f"README, Exit codes: not a row of code, name, when: {line}")
            codes = [int(code) for code in cells[0].split(",")]
            rows.append(ExitRow(codes, cells[1], plain(cells[2])))
    listed = {(code, row.name) for row in rows for code in row.codes}
    defined = {(int(status), status.name if status < 128 else "") for status in ExitStatus}
    if listed != defined or not paragraphs:
        raise LookupError(
            f"README's Exit codes table and errors.ExitStatus differ: {sorted(listed ^ defined)}"
        )
    return paragraphs, rows


def plain(markdown: str) -> str:
    """A paragraph or table cell of the README as text: no code spans, no bold."""
    return " ".join(markdown.replace("\\|", "|").replace("`", "").replace("**", "").split())


def exit_status_table(readme: str) -> list[str]:
    (intro, *notes), rows = exit_rows(readme)
    lines = [".SH EXIT STATUS", *text_lines(intro)]
    for row in rows:
        tag = bold(", ".join(str(code) for code in row.codes))
        lines += [".TP 16", f"\\&{tag} {escape(row.name)}", *text_lines(row.when)]
    for note in notes:
        lines += [".PP", *text_lines(note)]
    return lines


def hand_written(page: Page) -> list[str]:
    """ENVIRONMENT, FILES, NOTES and EXAMPLES of this page, from manpage_text."""
    lines: list[str] = []
    for title, table in (
        ("ENVIRONMENT", manpage_text.ENVIRONMENT),
        ("FILES", manpage_text.FILES),
    ):
        if page.name in table:
            lines.append(f".SH {title}")
            for term, text in table[page.name]:
                lines += entry(f"\\&{bold(term)}", text)
    if page.name in manpage_text.NOTES:
        lines.append(".SH NOTES")
        for note in manpage_text.NOTES[page.name]:
            lines += [".PP", *text_lines(note)]
    if page.name in manpage_text.EXAMPLES:
        lines.append(".SH EXAMPLES")
        for what, commands in manpage_text.EXAMPLES[page.name]:
            lines += [".PP", *text_lines(what), ".RS 4", *verbatim_lines(commands), ".RE"]
    return lines


def see_also(page: Page, children: list[Page]) -> list[str]:
    names = ["mailcli"] if page.name != "mailcli" else []
    if len(page.path) > 2:
        names.append("-".join(page.path[:-1]))
    names += [child.name for child in children]
    names += manpage_text.SEE_ALSO.get(page.name, [])
    return [".SH SEE ALSO", "\\&" + ",\n".join(map(reference, names))] if names else []


def reference(name: str) -> str:
    """`msmtp(1)` with the name bold; a bare name is in section 1."""
    title, _, section = name.partition("(")
    return f"{bold(title)}({escape(section.rstrip(')') or '1')})"


def render(page: Page, children: list[Page], exit_table: list[str]) -> str:
    lines = [
        *head(page),
        *description(page),
        *parameters(page),
        *subcommands(page, children),
        *exit_status(page, exit_table),
        *hand_written(page),
        *see_also(page, children),
    ]
    return "\n".join(lines) + "\n"


def pages(readme: str | None = None) -> dict[str, str]:
    """Every page: its file name (`mailcli-queue-run.1`) and its roff source. `readme`
    (default: the checkout's README.md) supplies the exit codes' table."""
    tree = list(walk(cli, ["mailcli"], None))
    unknown = manpage_text.page_names() - {page.name for page in tree}
    if unknown:
        raise LookupError(f"manpage_text names pages that no command has: {sorted(unknown)}")
    table = exit_status_table(README.read_text() if readme is None else readme)
    return {
        f"{page.name}.1": render(page, [p for p in tree if p.path[:-1] == page.path], table)
        for page in tree
    }


def write_pages(directory: Path) -> list[str]:
    """Write every page into `directory` and remove the pages of commands that are gone;
    the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = pages()
    for stale in directory.glob("mailcli*.1"):
        if stale.name not in written:
            stale.unlink()
    for name, text in written.items():
        (directory / name).write_text(text, encoding="ascii")
    return sorted(written)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write(f"usage: {REGENERATE.replace(' man', ' DIRECTORY')}\n")
        return int(ExitStatus.USAGE)
    names = write_pages(Path(argv[0]))
    sys.stdout.write(f"{len(names)} pages in {argv[0]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
