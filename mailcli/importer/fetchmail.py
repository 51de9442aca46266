"""fetchmail's run control file (`~/.fetchmailrc`), read as its manual gives it.

Tokens: words, and strings in double or single quotes (backslash escapes `\\n`, `\\t`,
`\\xHH` and any other character as itself); `#` starts a comment outside a string; the
punctuation `,` `:` `;` and the noise words and, with, has, wants, options are ignored.
`set NAME [VALUE]` sets a global; `defaults` starts options for every later entry;
`poll` (or `skip`, `server`) HOST starts a server entry, its server options, then one
or more users: `user NAME [there] [is|to LOCAL... [here]]` and that user's options.
`no OPTION` negates a boolean option.

Each user of a POP3 server is one mailcli account, named after the server (and the user,
when the server has several). Every keyword goes through `fetchmail_keys`' tables:
mapped, or reported with file, line and why. The state is fetchmail's idfile
(`~/.fetchids`, `set idfile`): `USER@HOST UID` a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mailcli.errors import DataError

_NOISE = {"and", "with", "has", "wants", "options"}
_PUNCTUATION = ",:;"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b"}
_TOKEN = re.compile(r"\s+|#[^\n]*|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,:;\"'#]+|.", re.S)


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    quoted: bool = False


@dataclass
class UserEntry:
    name: Token
    options: list[list[Token]] = field(default_factory=list)  # each: keyword, arguments


@dataclass
class ServerEntry:
    host: Token
    verb: str
    options: list[list[Token]] = field(default_factory=list)
    users: list[UserEntry] = field(default_factory=list)


@dataclass
class RunControl:
    path: Path
    globals: list[list[Token]] = field(default_factory=list)  # set NAME [VALUE]
    defaults: list[list[Token]] = field(default_factory=list)
    servers: list[ServerEntry] = field(default_factory=list)


def tokenize(text: str, path: Path) -> list[Token]:
    tokens: list[Token] = []
    line = 1
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if piece in ('"', "'"):
            raise DataError(f"{path}:{line}: a string without its closing quote")
        if len(piece) >= 2 and piece[0] in "\"'":
            tokens.append(Token(_unescape(piece[1:-1]), line, quoted=True))
        elif not (piece.isspace() or piece[0] == "#" or piece in _PUNCTUATION) and (
            piece.lower() not in _NOISE
        ):
            tokens.append(Token(piece, line))
        line += piece.count("\n")
    return tokens


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("x") and len(escaped) == 3:
            return chr(int(escaped[1:], 16))
        return _ESCAPES.get(escaped, escaped)

    return re.sub(r"\\(x[0-9A-Fa-f]{2}|.)", replace, text, flags=re.S)


def parse_run_control(text: str, path: Path, keywords: dict[str, int]) -> RunControl:
    """The entries of a fetchmailrc; `keywords` gives each option's argument count
    (-1: words up to the next keyword), so an unknown word is its own option."""
    parsed = RunControl(path)
    tokens = tokenize(text, path)
    position, target = 0, parsed.globals
    server: ServerEntry | None = None
    while position < len(tokens):
        token = tokens[position]
        word = token.text.lower() if not token.quoted else ""
        if word in ("poll", "skip", "server"):
            if position + 1 == len(tokens):
                raise DataError(f"{path}:{token.line}: {word} without a server name")
            server = ServerEntry(tokens[position + 1], word)
            parsed.servers.append(server)
            target, position = server.options, position + 2
        elif word == "defaults":
            server, target, position = None, parsed.defaults, position + 1
        elif word in ("user", "username") and server is not None and position + 1 < len(tokens):
            user = UserEntry(tokens[position + 1])
            server.users.append(user)
            target, position = user.options, position + 2
        else:
            option, position = _option(tokens, position, keywords, bool(word == "set"))
            target.append(option)
    return parsed


def _option(
    tokens: list[Token], position: int, keywords: dict[str, int], is_set: bool
) -> tuple[list[Token], int]:
    """One option from `position`: its keyword (after `set` or `no`) and arguments."""
    start = position
    position += is_set
    if position < len(tokens) and tokens[position].text.lower() == "no":
        position += 1
    if position >= len(tokens):
        return tokens[start:position], position
    arity = keywords.get(tokens[position].text.lower(), 0) if not tokens[position].quoted else 0
    position += 1
    if arity >= 0:
        end = min(position + arity, len(tokens))
    else:
        end = position
        while end < len(tokens) and not _is_keyword(tokens[end], keywords):
            end += 1
    return tokens[start:end], end


def _is_keyword(token: Token, keywords: dict[str, int]) -> bool:
    words = (*keywords, "poll", "skip", "server", "user", "username")
    return not token.quoted and token.text.lower() in words


def idfile_default(home: Path, fetchmail_home: str | None) -> Path:
    return Path(fetchmail_home or home) / ".fetchids"
