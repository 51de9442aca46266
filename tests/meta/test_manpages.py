"""The man pages in man/ are what the generator makes of the current CLI, and each says
what the command's `--help` says: the same usage, text, options and commands, read back
from the page as groff renders it (so an escaping mistake that loses or changes text
shows as a difference). They render without a groff warning, and building them costs
the commands nothing at start-up."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import click
import pytest

from mailcli.cli import manpage, manpage_text
from mailcli.cli.main import cli
from mailcli.errors import ExitStatus
from tests.helpers import imported_by, run_cli
from tests.servers import require

MAN = Path(__file__).resolve().parents[2] / "man"
README = MAN.parent / "README.md"
REGENERATE = f"run `.venv/bin/{manpage.REGENERATE}` and commit man/"


@functools.cache
def generated() -> dict[str, str]:
    return manpage.pages()


@functools.cache
def command_paths() -> list[tuple[str, ...]]:
    return [tuple(page.path) for page in manpage.walk(cli, ["mailcli"], None)]


def require_groff() -> str:
    """groff (Debian: groff-base), or the test is skipped (failed under CI)."""
    require("groff")
    return "groff"


def rendered(roff: str) -> str:
    """The page as plain text, one paragraph per line where it fits: no bold, no
    underline, no hyphenation."""
    done = subprocess.run(
        [require_groff(), "-man", "-Tutf8", "-ww", "-rLL=400n", "-P-cbou"],
        input=roff,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr == ""
    return done.stdout


def squeezed(text: str) -> str:
    """Text without white space: `--help` wraps lines (at hyphens too) where a page does not."""
    return re.sub(r"\s+", "", text)


class Entry(NamedTuple):
    term: str
    text: str


def split_term(line: str) -> tuple[str, str]:
    parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
    return (parts[0], parts[1] if len(parts) > 1 else "")


def definitions(lines: list[str], term_indent: int) -> list[Entry]:
    """A definition list: a line indented `term_indent` starts an entry, a deeper one
    continues it (`--help` writes the text after the term, two blanks apart, or below)."""
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if line.strip() and indent == term_indent:
            term, text = split_term(line)
            found.append((term, [text]))
        elif line.strip():
            found[-1][1].append(line)
    return [Entry(" ".join(term.split()), squeezed(" ".join(text))) for term, text in found]


class Help(NamedTuple):
    usage: str
    description: str
    options: list[Entry]
    commands: list[Entry]
    arguments: list[Entry]


def parse_help(text: str) -> Help:
    """`--help`'s output: the usage, the text, and its lists of options, commands and
    (when documented) positional arguments."""
    blocks: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
            blocks[current] = []
        else:
            blocks[current].append(line)
    head = "\n".join(blocks[""]).strip()
    usage, _, description = head.partition("\n\n")
    return Help(
        " ".join(usage.removeprefix("Usage:").split()),
        squeezed(description),
        definitions(blocks.get("Options", []), 2),
        definitions(blocks.get("Commands", []), 2),
        definitions(blocks.get("Positional arguments", []), 2),
    )


def sections(page: str) -> dict[str, list[str]]:
    """A rendered page's sections by title (the heading line and footer left out)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    lines = page.rstrip().splitlines()
    for line in lines[1:-1]:
        if line and not line.startswith(" "):
            current = found.setdefault(line, [])
        else:
            current.append(line)
    return found


def page_of(path: tuple[str, ...]) -> dict[str, list[str]]:
    return sections(rendered((MAN / f"{'-'.join(path)}.1").read_text()))


def help_of(path: tuple[str, ...]) -> Help:
    done = run_cli([*path[1:], "--help"])
    assert done.code == 0, done.stderr
    return parse_help(done.stdout)


def test_the_pages_in_man_are_current() -> None:
    on_disk = {page.name: page.read_text() for page in MAN.glob("*.1")}
    expected = generated()
    stale = sorted(
        name for name in on_disk.keys() | expected if on_disk.get(name) != expected.get(name)
    )
    assert stale == [], f"man/ is out of date ({', '.join(stale)}): {REGENERATE}"


def test_every_command_has_a_page_named_by_its_path() -> None:
    names = {"-".join(path) + ".1" for path in command_paths()}
    assert {"mailcli.1", "mailcli-send.1", "mailcli-queue-run.1"} <= names
    assert set(generated()) == names


@pytest.mark.parametrize("path", command_paths(), ids="-".join)
def test_a_page_says_what_help_says(path: tuple[str, ...]) -> None:
    page, shown = page_of(path), help_of(path)
    assert " ".join(" ".join(page["SYNOPSIS"]).split()) == shown.usage
    assert squeezed(" ".join(page["DESCRIPTION"])) == shown.description
    assert definitions(page.get("OPTIONS", []), 7) == shown.options
    assert definitions(page.get("ARGUMENTS", []), 7) == shown.arguments
    listed = definitions(page.get("COMMANDS", []), 7)
    assert [entry.term for entry in listed] == [entry.term for entry in shown.commands]
    for in_page, in_help in zip(listed, shown.commands, strict=True):
        assert in_page.text.startswith(in_help.text.removesuffix("..."))


@pytest.mark.parametrize("path", command_paths()[1:], ids="-".join)
def test_a_pages_name_line_is_the_summary_its_group_lists(path: tuple[str, ...]) -> None:
    (name_line,) = [line for line in page_of(path)["NAME"] if line.strip()]
    name, _, summary = name_line.strip().partition(" - ")
    assert name == "-".join(path)
    (listed,) = [entry for entry in help_of(path[:-1]).commands if entry.term == path[-1]]
    assert squeezed(summary).startswith(listed.text.removesuffix("..."))


def test_the_main_page_holds_the_readmes_exit_codes() -> None:
    """mailcli(1)'s EXIT STATUS is the README's table: every errors.ExitStatus, each
    with the README's words for it."""
    lines = page_of(("mailcli",))["EXIT STATUS"]
    tags = [found[1] for line in lines if (found := re.match(r" {7}(\d[\d, ]*\d|\d)", line))]
    listed = [int(code) for tag in tags for code in tag.split(", ")]
    assert sorted(listed) == sorted(int(status) for status in ExitStatus)
    _, rows = manpage.exit_rows(README.read_text())
    text = squeezed(" ".join(lines))
    assert [row.when for row in rows if squeezed(row.when) not in text] == []
    assert "stdinclosed(<&-)" in text and "(mailcli...|head)" in text  # markdown gone


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        (("| 76 | PROTOCOL |", "| 76 | PROTO |"), "(76, 'PROTO'), (76, 'PROTOCOL')"),
        (("| 129, 143 |", "| 129 |"), "(143, '')"),
        (("| 0 | OK |", "| 1 | OK |"), "(0, 'OK'), (1, 'OK')"),
    ],
)
def test_a_readme_table_that_differs_from_exit_status_is_refused(
    change: tuple[str, str], difference: str
) -> None:
    readme = README.read_text()
    assert change[0] in readme
    with pytest.raises(LookupError) as refused:
        manpage.exit_rows(readme.replace(*change))
    assert f"errors.ExitStatus differ: [{difference}]" in str(refused.value)


def test_every_page_has_the_hand_written_sections_it_is_given() -> None:
    names = manpage_text.page_names()
    assert names <= {"-".join(path) for path in command_paths()}
    for name in manpage_text.EXAMPLES:
        assert "EXAMPLES" in sections(rendered(generated()[f"{name}.1"]))


@pytest.mark.parametrize("name", sorted(p.name for p in MAN.glob("*.1")))
def test_a_page_renders_without_warnings(name: str) -> None:
    done = subprocess.run(
        [require_groff(), "-man", "-ww", "-z", str(MAN / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_every_hyphen_is_a_minus_sign() -> None:
    """`\\-`, not `-`: groff may print a plain one as a hyphen (U+2010), and an option
    copied from the page would not work."""
    for name, text in generated().items():
        lines = [line for line in text.splitlines() if not line.startswith(".")]
        assert [line for line in lines if re.search(r"(?<!\\)-", line)] == [], name


HOSTILE = (
    "First line.\n\n"
    ".TH a request at the start of a line\n"
    "'br an apostrophe at the start\n"
    r"a backslash \fB \n(.l \\ and \e stays text; "
    '--option and -x, `quoted\' ~home ^caret "dq" über €\n\n'
    "\b\n"
    "  .kept   as written\n"
    "  'so is this"
)


def test_hostile_help_text_comes_out_as_written() -> None:
    """A help text and an option help that look like roff (a leading `.` or `'`, escapes,
    backslashes) and hold hyphens, quotes and non-ASCII are printed as they are."""

    @click.command(help=HOSTILE)
    @click.option("--odd-name", "-o", metavar="A\\B", help=".SH not a section \\fI")
    def hostile() -> None:
        pass

    context = click.Context(hostile, info_name="hostile")
    text = manpage.render(manpage.Page(["hostile"], hostile, context), [], [])
    page = sections(rendered(text))
    assert set(page) == {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"}
    assert squeezed(" ".join(page["DESCRIPTION"])) == squeezed(HOSTILE.replace("\b", ""))
    assert "         .kept   as written" in page["DESCRIPTION"]
    assert definitions(page["OPTIONS"], 7)[0] == Entry(
        "-o, --odd-name A\\B", squeezed(".SH not a section \\fI")
    )
    assert all(ord(char) < 128 for char in text)
    assert "\\-\\-odd\\-name" in text


def test_nothing_of_the_man_pages_loads_on_a_command_path() -> None:
    modules = ["mailcli.cli.manpage", "mailcli.cli.manpage_text"]
    assert imported_by(["--help"], modules) == []
    assert imported_by(["send", "--help"], modules) == []
