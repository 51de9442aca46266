"""Delivery status notifications (RFC 3461): what a sender asks for, and its parameters.

A `DsnRequest` is what `send --dsn-notify/--dsn-return/--envid`, the account's
`dsn_notify`/`dsn_return` keys, or `sendmail -N/-R/-V` asked for; it travels with the
message (`Outgoing.dsn`) and with a queued entry. On the wire, only when the server
offers DSN in its EHLO reply: MAIL FROM gets `RET=` and `ENVID=`, each RCPT TO gets
`NOTIFY=` and `ORCPT=rfc822;ADDRESS`. A server that does not offer DSN still gets the
message, without them (the session's result says "not offered"): a notification
preference never costs a message.

NOTIFY is `never` alone, or a comma list of `success`, `failure`, `delay`; anything
else (or `never` with others) is a usage error (64). ENVID and ORCPT values are xtext
(RFC 3461 4: `+` and `=`, and anything outside "!".."~", as `+XX`), by `xtext`, the one
encoder.
"""

from __future__ import annotations

from typing import NamedTuple

from mailcli.errors import MailcliError, UsageError

NOTIFY_KEYWORDS = ("success", "failure", "delay")
RETURN_CHOICES = ("full", "headers")
_RET_PARAMETER = {"full": "FULL", "headers": "HDRS"}
MAX_ENVID = 100  # RFC 3461 4.4: characters, before encoding


class DsnRequest(NamedTuple):
    """What notifications a message asks for; empty fields: the server's defaults.
    `notify` is ("never",) or a subset of NOTIFY_KEYWORDS in their order."""

    notify: tuple[str, ...] = ()
    ret: str | None = None  # "full" or "headers"
    envid: str | None = None

    def __bool__(self) -> bool:
        return bool(self.notify or self.ret or self.envid is not None)

    def mail_parameters(self) -> list[str]:
        """RET= and ENVID= for MAIL FROM."""
        parameters = [f"RET={_RET_PARAMETER[self.ret]}"] if self.ret else []
        if self.envid is not None:
            parameters.append(f"ENVID={xtext(self.envid)}")
        return parameters

    def rcpt_parameters(self, recipient: str) -> list[str]:
        """NOTIFY= and ORCPT= for one RCPT TO. A non-ASCII address has no rfc822 ORCPT
        (xtext is ASCII; RFC 6533's utf-8 type is for SMTPUTF8 servers): left out."""
        parameters = [f"NOTIFY={','.join(self.notify).upper()}"] if self.notify else []
        if recipient.isascii():
            parameters.append(f"ORCPT=rfc822;{xtext(recipient)}")
        return parameters


def xtext(text: str) -> str:
    """RFC 3461 4: printable ASCII except `+` and `=` as is, every other octet (of the
    UTF-8 encoding) as `+XX`, upper-case hex."""
    return "".join(
        chr(octet) if 0x21 <= octet <= 0x7E and octet not in b"+=" else f"+{octet:02X}"
        for octet in text.encode("utf-8")
    )


def notify_problem(value: str) -> str | None:
    """Why `value` is no NOTIFY list, or None when it is one."""
    words = [word.strip().lower() for word in value.split(",")]
    unknown = [word for word in words if word not in ("never", *NOTIFY_KEYWORDS)]
    if unknown:
        known = "never, " + ", ".join(NOTIFY_KEYWORDS)
        return f"unknown keyword {unknown[0]!r} (known: {known})"
    if "never" in words and len(set(words)) > 1:
        return "`never` cannot be combined with other keywords"
    return None


def parse_notify(
    value: str, source: str, error: type[MailcliError] = UsageError
) -> tuple[str, ...]:
    """`never` or a comma list of success, failure, delay -> the keywords; else `error`
    (64 for an option; ConfigError, 78, for an account's `dsn_notify`)."""
    problem = notify_problem(value)
    if problem is not None:
        raise error(f"{source} {value!r}: {problem}")
    words = {word.strip().lower() for word in value.split(",")}
    return ("never",) if "never" in words else tuple(k for k in NOTIFY_KEYWORDS if k in words)


def parse_return(value: str, source: str) -> str:
    """`full` or `headers` (sendmail's `hdrs` too) -> "full" | "headers"; else 64."""
    word = value.strip().lower()
    word = "headers" if word == "hdrs" else word
    if word not in RETURN_CHOICES:
        raise UsageError(f"{source} {value!r}: must be full or headers")
    return word


def parse_envid(value: str, source: str) -> str:
    """An envelope id: printable ASCII, at most 100 characters (RFC 3461 4.4); else 64."""
    if not value or not value.isascii() or not value.isprintable() or len(value) > MAX_ENVID:
        raise UsageError(f"{source}: an envelope id is 1 to {MAX_ENVID} printable ASCII characters")
    return value
