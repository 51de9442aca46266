"""`~/.netrc` (or `$NETRC`): a login's password, read as curl, ftp, msmtp and mpop read it.

The grammar: tokens separated by spaces, tabs and newlines. `machine NAME` starts an
entry; `default` starts the entry for any machine; `login NAME`, `password SECRET` and
`account VALUE` (ignored) belong to the entry before them; `macdef NAME` starts a macro
whose body, the lines up to the next empty line, is skipped. Words before the first
entry and unknown words are ignored, one by one, as curl does. A token may be written
in double quotes, with `\\"`, `\\\\`, `\\n`, `\\r` and `\\t` inside (curl 7.84's quoting). A
`#` beginning a word where a keyword is expected comments out the rest of the line; a
value (a password) may begin with `#`.

Lookup (`find`): the first `machine` entry whose name is the server host (ignoring
case) and whose `login` is the user; else the `default` entry, when its `login` is
the user (curl's rule for `default`, with the login always checked: an entry never
gives its password to another user). An entry without a password gives nothing.

Refused, with a one-line `CredentialsError` (78) that names the file and never quotes
it: not a regular file (a symlink is followed, since dotfile managers link the file,
and the file it names is checked), not owned by the user running mailcli, readable or
writable by group or others (ftp's rule and the stdlib's: `chmod 600`), over 1 MiB,
not UTF-8, a keyword without its value or an unclosed quote (naming the line). A
missing file is no file: the credential chain goes on.

Not the stdlib `netrc` module: it raises on files curl reads (a word it does not know,
a `login` before any `machine`), and checks permissions only for the user's own
`~/.netrc`, never for `$NETRC`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from mailcli.errors import CredentialsError

ENV_VAR = "NETRC"
MAX_SIZE = 1024 * 1024  # far more than any real netrc; bounds what a hostile file costs
_SPACE = " \t\r\n\f\v"
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


class NetrcEntry(NamedTuple):
    """One entry; `machine` None is the `default` entry."""

    machine: str | None
    login: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # the password never shows
        return f"NetrcEntry(machine={self.machine!r}, login={self.login!r})"


class NetrcAnswer(NamedTuple):
    """What the netrc says for a login: the password (None: none) and why, in words."""

    password: str | None
    detail: str

    def __repr__(self) -> str:
        return f"NetrcAnswer(found={self.password is not None}, detail={self.detail!r})"


def netrc_path(environ: Mapping[str, str] = os.environ) -> str:
    """`$NETRC` when set and not empty, else `~/.netrc`."""
    return environ.get(ENV_VAR) or os.path.join(os.path.expanduser("~"), ".netrc")


def lookup(host: str, user: str, environ: Mapping[str, str] = os.environ) -> NetrcAnswer:
    """The password the netrc holds for USER at HOST; raises CredentialsError (78)
    when the file must not or cannot be used."""
    path = netrc_path(environ)
    text = read_netrc(path)
    if text is None:
        return NetrcAnswer(None, f"no file {path}")
    entry = find(parse(text, path), host, user)
    if entry is None:
        return NetrcAnswer(None, f"no entry for machine {host!r} login {user!r} in {path}")
    where = f"machine {host!r}" if entry.machine is not None else "the default entry"
    if entry.password is None:
        return NetrcAnswer(None, f"{where} login {user!r} in {path} has no password")
    return NetrcAnswer(entry.password, f"{where} login {user!r} in {path}")


def find(entries: list[NetrcEntry], host: str, user: str) -> NetrcEntry | None:
    """The first machine entry for HOST and USER, else the default entry for USER."""
    host = host.lower()
    for entry in entries:
        if entry.login == user and entry.machine is not None and entry.machine.lower() == host:
            return entry
    return next((e for e in entries if e.machine is None and e.login == user), None)


def read_netrc(path: str) -> str | None:
    """The file's text, None when it does not exist; refused unless only its owner, the
    user running mailcli, may read it. Checked on the open descriptor (no race)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read the netrc file: {exc.strerror}") from None
    try:
        _check_safe(path, os.fstat(fd))
        data = _read_bounded(path, fd)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CredentialsError(f"{path}: line {line}: the netrc file is not UTF-8") from None


def _check_safe(path: str, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise CredentialsError(f"{path}: refused: the netrc file is not a regular file")
    if status.st_uid != os.geteuid():
        raise CredentialsError(
            f"{path}: refused: the netrc file belongs to uid {status.st_uid}, not to you "
            f"(uid {os.geteuid()})"
        )
    if status.st_mode & 0o077:
        mode = stat.S_IMODE(status.st_mode)
        raise CredentialsError(
            f"{path}: refused: group or others may read or write the netrc file "
            f"(mode {mode:04o}); run `chmod 600 {path}`"
        )
    if status.st_size > MAX_SIZE:
        raise CredentialsError(f"{path}: refused: the netrc file is larger than 1 MiB")


def _read_bounded(path: str, fd: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_SIZE:  # grew after fstat
            raise CredentialsError(f"{path}: refused: the netrc file is larger than 1 MiB")
    return b"".join(chunks)


def parse(text: str, path: str = ".netrc") -> list[NetrcEntry]:
    """The entries, in the file's order; CredentialsError naming the line when broken."""
    scanner = _Scanner(text, path)
    entries: list[NetrcEntry] = []
    for keyword in scanner.keywords():
        if keyword == "machine":
            entries.append(NetrcEntry(scanner.value(keyword)))
        elif keyword == "default":
            entries.append(NetrcEntry(None))
        elif keyword in ("login", "password", "account"):
            value = scanner.value(keyword)
            if entries and keyword != "account":
                entries[-1] = entries[-1]._replace(**{keyword: value})
        elif keyword == "macdef":
            scanner.value(keyword)
            scanner.skip_macro()
    return entries


class _Scanner:
    """Tokens of a netrc text, with the line each is on (for errors)."""

    def __init__(self, text: str, path: str) -> None:
        self.text, self.path = text, path
        self.position, self.line = 0, 1

    def fail(self, problem: str) -> CredentialsError:
        return CredentialsError(f"{self.path}: line {self.line}: {problem}")

    def keywords(self) -> Iterator[str]:
        """Each word where a keyword is expected; `#...` to the end of the line skipped."""
        while True:
            self._skip_space()
            if self.position >= len(self.text):
                return
            if self.text[self.position] == "#":
                self._skip_line()
                continue
            yield self._token()

    def value(self, keyword: str) -> str:
        keyword_line = self.line
        self._skip_space()
        if self.position >= len(self.text):
            self.line = keyword_line
            raise self.fail(f"`{keyword}` without a value")
        return self._token()

    def skip_macro(self) -> None:
        """A macro's body: the rest of its line, then lines up to an empty one."""
        self._skip_line()
        while self.position < len(self.text):
            end = self.text.find("\n", self.position)
            end = len(self.text) if end < 0 else end
            body = self.text[self.position : end].rstrip("\r")
            self.position = end + 1
            self.line += 1
            if not body:
                return

    def _skip_space(self) -> None:
        text = self.text
        while self.position < len(text) and text[self.position] in _SPACE:
            self.line += text[self.position] == "\n"
            self.position += 1

    def _skip_line(self) -> None:
        end = self.text.find("\n", self.position)
        self.position = len(self.text) if end < 0 else end + 1
        self.line += end >= 0

    def _token(self) -> str:
        if self.text[self.position] == '"':
            return self._quoted()
        start = self.position
        while self.position < len(self.text) and self.text[self.position] not in _SPACE:
            self.position += 1
        return self.text[start : self.position]

    def _quoted(self) -> str:
        text, characters = self.text, []
        position = self.position + 1
        while position < len(text) and text[position] not in '"\n':
            character = text[position]
            if character == "\\" and position + 1 < len(text) and text[position + 1] != "\n":
                position += 1
                character = _ESCAPES.get(text[position], text[position])
            characters.append(character)
            position += 1
        if position >= len(text) or text[position] != '"':
            raise self.fail("a quoted word is not closed on its line")
        self.position = position + 1
        return "".join(characters)
