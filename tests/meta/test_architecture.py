"""The import rules of the codebase, and startup staying free of heavy modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import imported_by

PACKAGE = Path(__file__).resolve().parents[2] / "mailcli"
HEAVY = ["rich", "keyring", "email", "ssl", "smtplib", "poplib", "tomlkit"]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth in the file (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def imports_with_test_modules(path: Path) -> set[str]:
    """The modules a file imports, counting `from tests[.pkg] import test_x` as
    tests[.pkg].test_x."""
    found = imports_of(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tests":
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("test_")
            )
    return found


def is_test_module(module: str) -> bool:
    """tests.test_x or tests.<package>.test_x (at any depth under tests)."""
    parts = module.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:])


def modules_importing_tests(tests: Path) -> dict[str, list[str]]:
    """Each file under `tests` that imports a test module, with the test modules it imports."""
    offenders = {
        str(path.relative_to(tests)): sorted(
            filter(is_test_module, imports_with_test_modules(path))
        )
        for path in sorted(tests.rglob("*.py"))
    }
    return {name: found for name, found in offenders.items() if found}


def modules() -> dict[str, set[str]]:
    return {
        str(path.relative_to(PACKAGE.parent)): imports_of(path)
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def importers_of(top_level: str) -> set[str]:
    return {
        name
        for name, imported in modules().items()
        if any(module.split(".")[0] == top_level for module in imported)
    }


def test_errors_is_a_leaf() -> None:
    assert not any(m.startswith("mailcli") for m in imports_of(PACKAGE / "errors.py"))


def test_only_the_cli_imports_click() -> None:
    assert all(name.startswith("mailcli/cli/") for name in importers_of("click"))


def test_only_render_imports_rich() -> None:
    assert importers_of("rich") == {"mailcli/render.py"}


def test_only_credentials_imports_keyring() -> None:
    assert importers_of("keyring") == {"mailcli/auth/credentials.py"}


def test_nothing_outside_the_cli_imports_the_cli() -> None:
    for name, imported in modules().items():
        if not name.startswith("mailcli/cli/") and name != "mailcli/__main__.py":
            assert not any(m.startswith("mailcli.cli") for m in imported), name


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["account", "--help"]])
def test_startup_does_not_import_heavy_modules(argv: list[str]) -> None:
    assert imported_by(argv, HEAVY) == []


# What a command's own --help may not import: its module loads, its work does not (the
# POP3 commands name their --quit-after phases from mailcli.pop3.phases, without poplib).
NOT_FOR_HELP = [
    "rich",
    "keyring",
    "email",
    "smtplib",
    "poplib",
    "ssl",
    "tomlkit",
    "mailcli.auth.credentials",
]
COMMANDS = ["send", "sendmail", "queue", "password", "stat", "retr", "shell", "fetch", "check"]
COMMANDS += ["oauth"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_commands_help_does_not_import_its_work(command: str) -> None:
    assert imported_by([command, "--help"], NOT_FOR_HELP) == []


@pytest.mark.parametrize(
    ("argv", "unused"),
    [
        (["stat"], ["mailcli.config", "dataclasses"]),
        (
            ["send", "--host", "127.0.0.1", "--from", "not an address", "--to", "t@x.test"],
            ["mailcli.config"],
        ),
    ],
)
def test_a_run_without_a_config_file_does_not_import_the_config_module(
    argv: list[str], unused: list[str]
) -> None:
    # stat stops at "no POP3 host given" (78), send at the unparsable --from (65): both
    # after asking for the account, before any connection. No file at the default path.
    # A POP3 command builds no dataclass at all (its records are NamedTuples).
    assert imported_by(argv, unused) == []


# -- the layout: a package per subsystem, the shared base at the top ----------------------

BASE = {"errors", "config", "endpoint", "transcript", "render", "fsutil", "network", "tlsinfo"}
SUBSYSTEMS = {"auth", "smtp", "sendmail", "pop3", "fetch", "check", "trail", "cli", "transport"}
SUBSYSTEMS |= {"importer"}  # account import: other tools' files into config, keyring, state
# The parts of the base that are packages, whose __init__ is the module itself:
# mailcli.config is the file; the tables inside an account are read in config.tables.
BASE_PACKAGES = {"config"}
# Which subsystems each part of the code may import (the base is open to everyone).
MAY_IMPORT = {
    "base": set(),
    "auth": set(),
    "transport": set(),  # how a connection is opened, below the protocols
    # The protocols authenticate through auth's SASL (OAuth2 bearer tokens).
    "smtp": {"auth", "transport"},
    "pop3": {"auth", "transport"},
    "sendmail": {"smtp", "auth"},
    "fetch": {"pop3", "auth"},
    "check": {"smtp", "pop3", "auth", "transport"},
    # The log's records read the results of send, sendmail, queue run and fetch.
    "trail": {"smtp", "sendmail", "fetch"},
    # The import writes the keyring's entries and the fetch state through their modules,
    # and checks a login method against those the protocols speak.
    "importer": {"auth", "fetch", "smtp", "pop3"},
    "cli": SUBSYSTEMS - {"cli"},
}


def part_of(module: str) -> str:
    """`mailcli.fetch.run` -> "fetch"; `mailcli.config` -> "base"; `python -m mailcli`
    is the command line."""
    parts = module.split(".")
    if parts[1:] == ["__main__"]:
        return "cli"
    return parts[1] if len(parts) > 1 and parts[1] in SUBSYSTEMS else "base"


def test_the_top_holds_only_the_shared_base_and_the_subsystem_packages() -> None:
    modules_at_top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert modules_at_top == BASE - BASE_PACKAGES and len(BASE) <= 8
    assert packages == SUBSYSTEMS | BASE_PACKAGES


def test_package_init_files_hold_a_docstring_and_no_code() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name in BASE_PACKAGES:
            continue  # the module itself: importing it is reading the config file
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init}: say what the package is"
        assert len(tree.body) == 1, f"{init}: no code in a package's __init__ (start-up)"


def test_imports_flow_one_way_between_subsystems() -> None:
    for name, imported in modules().items():
        source = part_of(name.removesuffix(".py").replace("/", "."))
        allowed = MAY_IMPORT[source] | {source, "base"}
        for target in imported:
            if target.startswith("mailcli."):
                assert part_of(target) in allowed, f"{name} imports {target}"


# -- no import cycle, counting every import in a module ---------------------------------


def module_name(path: Path, root: Path) -> str:
    """`ROOT/mailcli/fetch/run.py` -> `mailcli.fetch.run`; a package's `__init__.py` is
    the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The names one import statement may load: `from P import x` loads P, and P.x when
    x is a module; a relative import is resolved against `package`, the package of the
    importing module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, base] if base else parts)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of the package at `package` -> the package's modules it imports
    anywhere in its file: at the top, inside functions, under `if TYPE_CHECKING:`.
    Importing `a.b.c` runs `a` and `a.b` first, so those count too."""
    paths = {module_name(path, package.parent): path for path in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in import_targets(node, here):
                    parts = target.split(".")
                    found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
        graph[name] = (found & paths.keys()) - {name}
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str]:
    """The shortest chain of imports from `start` back to it, as the modules in import
    order from `start`; [] when there is none (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        reached = []
        for module in frontier:
            for target in sorted(graph[module]):
                if target == start:
                    chain = [module]
                    while chain[-1] != start:
                        chain.append(came_from[chain[-1]])
                    return chain[::-1]
                if target not in came_from:
                    came_from[target] = module
                    reached.append(target)
        frontier = reached
    return []


def import_cycles(package: Path) -> list[str]:
    """For each module on an import cycle, the shortest cycle through it, written
    `a -> b -> a` from its first module in sort order; each cycle once."""
    graph = import_graph(package)
    cycles = set()
    for start in graph:
        chain = cycle_through(graph, start)
        if chain:
            first = chain.index(min(chain))
            chain = chain[first:] + chain[:first]
            cycles.add(" -> ".join([*chain, chain[0]]))
    return sorted(cycles)


def test_no_import_cycle_in_the_package() -> None:
    """A cycle, even through an import inside a function or under TYPE_CHECKING, means
    two modules that cannot be understood, tested or moved apart."""
    assert import_cycles(PACKAGE) == []


def test_the_cycle_check_finds_every_form_of_import(tmp_path: Path) -> None:
    """The check above sees a cycle through a TYPE_CHECKING import, an import inside a
    function, relative imports and a subpackage, so its empty result means something."""
    files = {
        "__init__.py": '"""A package."""\n',
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "b.py": "def load() -> None:\n    from . import a\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .d import value\n",
        "sub/d.py": "import pkg.sub.c\nvalue = 1\n",
        "sub/e.py": "from ..a import A\nfrom pkg.sub import c\n",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    assert import_cycles(tmp_path / "pkg") == [
        "pkg.a -> pkg.b -> pkg.a",
        "pkg.sub.c -> pkg.sub.d -> pkg.sub.c",
    ]


# -- the POP3 session owns its wire --------------------------------------------------------


def session_private_names() -> set[str]:
    """The private names of Pop3Session: its methods and the attributes it sets on self."""
    tree = ast.parse((PACKAGE / "pop3" / "session.py").read_text())
    (session,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Pop3Session"]
    names = {n.name for n in session.body if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(session):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def reaches_past_the_pop3_session(source: str, private: set[str]) -> list[str]:
    """What in a module reaches past a POP3 session's methods: the wire module itself
    (`mailcli.pop3.wire`), or one of the session's private names (`pop._wire`,
    `pop._guarded`) on any object."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [name for name in [node.module, *names] if name == "mailcli.pop3.wire"]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "mailcli.pop3.wire"]
        elif isinstance(node, ast.Attribute) and node.attr in private:
            found.append(ast.unparse(node))
    return found


def test_the_wire_check_finds_what_it_looks_for() -> None:
    private = session_private_names()
    assert {"_wire", "_guarded"} <= private
    source = (
        "from mailcli.pop3.wire import TracedPOP3\n"
        "from mailcli.pop3 import wire\n"
        "pop._wire.send_lines('STAT')\n"
        "session._guarded(read)\n"
        "self.maildir._batch; pop.pipelined('DELE', [1])\n"
    )
    assert sorted(reaches_past_the_pop3_session(source, private)) == [
        "mailcli.pop3.wire",
        "mailcli.pop3.wire",
        "pop._wire",
        "session._guarded",
    ]


def test_nothing_outside_pop3_touches_the_pop3_wire() -> None:
    """Every write and read of a POP3 session goes through its one guarded path (a
    connection reset is 75, not an internal error): no module outside mailcli/pop3/
    reaches its wire."""
    users = [
        name
        for name, imported in modules().items()
        if not name.startswith("mailcli/pop3/")
        and any(m.startswith("mailcli.pop3") for m in imported)
    ]
    assert "mailcli/fetch/run.py" in users and "mailcli/check/report.py" in users
    private = session_private_names()
    for name in users:
        source = (PACKAGE.parent / name).read_text()
        assert reaches_past_the_pop3_session(source, private) == [], name


def test_the_pop3_session_hands_out_no_wire() -> None:
    """No public method or property of Pop3Session returns its poplib object (as the
    old `pop.pop` did: eleven call sites wrote to it past the error translation)."""
    import inspect
    import poplib
    import typing

    from mailcli.pop3.session import Pop3Session

    for name, member in vars(Pop3Session).items():
        function = member.fget if isinstance(member, property) else member
        if name.startswith("_") or not inspect.isfunction(function):
            continue
        returned = typing.get_type_hints(function).get("return")
        assert not (inspect.isclass(returned) and issubclass(returned, poplib.POP3)), name


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in tests/helpers.py, tests/servers/ or a harness module
    (crashpoints, errorpoints, fetchcases, ...), never in a test module: importing one
    would also collect its tests' module-level state into another's run."""
    assert modules_importing_tests(Path(__file__).resolve().parents[1]) == {}


@pytest.mark.parametrize(
    "statement",
    [
        "from tests.fetch import test_fetch",
        "from tests.fetch.test_fetch import server_message",
        "import tests.fetch.test_fetch",
        "from tests import test_demo",
    ],
)
def test_the_test_module_rule_catches_an_import(tmp_path: Path, statement: str) -> None:
    """The rule above sees a test module imported in each form and at any depth, so its
    empty result means something."""
    nested = tmp_path / "tests" / "sendmail"
    nested.mkdir(parents=True)
    (nested / "test_queue.py").write_text(f"{statement}\nfrom tests.helpers import Mailcli\n")
    (nested / "harness.py").write_text("from tests import crashpoints\nimport tests.helpers\n")
    (found,) = modules_importing_tests(tmp_path / "tests").values()
    assert len(found) == 1 and found[0].split(".")[-1] in {"test_fetch", "test_demo"}
    assert list(modules_importing_tests(tmp_path / "tests")) == ["sendmail/test_queue.py"]
