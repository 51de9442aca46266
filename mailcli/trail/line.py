r"""The trail's line format: `key=value` pairs separated by single spaces, `time` first.

A value is written bare when it is non-empty printable ASCII without space, `"`, `\` or
`=`; otherwise it is quoted: `"..."` with `\\`, `\"`, `\n`, `\r`, `\t`, `\xHH` (other
control characters, and bytes that were not UTF-8), `\uXXXX` or `\UXXXXXXXX` (other
characters that are not printable, such as U+2028) escaped. Printable non-ASCII stays as
UTF-8. So a record is always exactly one line whatever a server sent, and a reader splits
it with one grammar (`tests/helpers.py` holds the tests' parser). A key may repeat
(`rcpt`), in order. A field whose value is None is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

Field = tuple[str, "str | int | None"]

# Printable ASCII but space, quote, backslash and "=": written as is.
_BARE = frozenset(chr(code) for code in range(0x21, 0x7F)) - set('"\\=')
_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_line(fields: Sequence[Field]) -> str:
    """The record, without its newline."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields if value is not None)


def _value(value: str | int) -> str:
    text = str(value)
    if text and all(character in _BARE for character in text):
        return text
    return '"' + "".join(_escaped(character) for character in text) + '"'


def _escaped(character: str) -> str:
    named = _NAMED.get(character)
    if named is not None:
        return named
    if character.isprintable():
        return character
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def now() -> str:
    """The local time in ISO 8601 with its offset, to the second."""
    from datetime import datetime

    return datetime.now().astimezone().isoformat(timespec="seconds")
