"""A queue entry's metadata and its JSON file (`ID.json`): what `Spool.enqueue` writes,
and the checks that tell a whole entry from a damaged one (exact types, the fields
`enqueue` always writes, the id it was written under). The DSN fields came later: an
entry without them reads as one that asks for no notifications."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mailcli.smtp.envelope import Envelope

if TYPE_CHECKING:
    from mailcli.smtp.dsn import DsnRequest


@dataclass
class QueueEntry:
    """One waiting message's metadata (its bytes are in ID.eml)."""

    id: str
    created: float
    account: str | None
    envelope_from: str
    recipients: list[str]
    smtputf8: bool = False
    attempts: int = 0
    last_error: str | None = None
    last_attempt: float | None = None
    dsn_notify: list[str] | None = None  # RFC 3461, as `smtp.dsn.DsnRequest` holds them
    dsn_return: str | None = None
    envid: str | None = None

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.envelope_from, tuple(self.recipients))

    @property
    def dsn(self) -> DsnRequest | None:
        """The notifications the message asked for, None when none."""
        from mailcli.smtp.dsn import DsnRequest

        request = DsnRequest(tuple(self.dsn_notify or ()), self.dsn_return, self.envid)
        return request or None


def dsn_fields(dsn: DsnRequest | None) -> dict[str, Any]:
    """A QueueEntry's DSN fields for a message's request (`Spool.enqueue`)."""
    if not dsn:
        return {}
    return {"dsn_notify": list(dsn.notify) or None, "dsn_return": dsn.ret, "envid": dsn.envid}


def entry_json(entry: QueueEntry) -> bytes:
    """The JSON `parse_entry` reads back."""
    return json.dumps(asdict(entry), indent=1, ensure_ascii=False).encode("utf-8")


_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "created": (int, float),
    "account": (str, type(None)),
    "envelope_from": (str,),
    "recipients": (list,),
    "smtputf8": (bool,),
    "attempts": (int,),
    "last_error": (str, type(None)),
    "last_attempt": (int, float, type(None)),
    "dsn_return": (str, type(None)),
    "envid": (str, type(None)),
}
_REQUIRED = ("id", "created", "account", "envelope_from", "recipients")


def parse_entry(entry_id: str, text: str) -> QueueEntry:
    """The JSON as `enqueue` wrote it, or ValueError saying what is wrong."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise ValueError("its JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise ValueError("its JSON is not an object")
    wrong = [key for key, value in document.items() if not _typed(key, value)]
    wrong += [key for key in _REQUIRED if key not in document]
    if wrong:
        raise ValueError(f"wrong or missing fields in its JSON: {', '.join(wrong)}")
    if document["id"] != entry_id:
        raise ValueError(f"its JSON names another entry ({document['id']!r})")
    return QueueEntry(**document)


def _typed(key: str, value: object) -> bool:
    """Exact JSON types (a bool is no number here); recipients: non-empty strings."""
    if key == "recipients":
        return isinstance(value, list) and bool(value) and all(type(v) is str for v in value)
    if key == "dsn_notify":
        return value is None or _notify_list(value)
    if key == "dsn_return" and value is not None:
        return value in ("full", "headers")
    return key in _TYPES and type(value) in _TYPES[key]


def _notify_list(value: object) -> bool:
    from mailcli.smtp.dsn import NOTIFY_KEYWORDS

    if not isinstance(value, list) or not value:
        return False
    return value == ["never"] or all(word in NOTIFY_KEYWORDS for word in value)


def why_unreadable(exc: Exception) -> str:
    """Why an entry's JSON could not be taken, in words for the quarantine's reason."""
    if isinstance(exc, json.JSONDecodeError):
        return f"its JSON is unreadable ({exc.msg})"
    if isinstance(exc, UnicodeDecodeError):
        return "its JSON is not UTF-8"
    if isinstance(exc, OSError):
        return f"cannot read its JSON: {exc.strerror}"
    return str(exc)
