"""Which server software answered, and the fix catalogue: the verified fix per finding.

`identify` names the software from what the server says unasked and to EHLO/CAPA: its
greeting (most name themselves), its capabilities, and behaviour that gives it away
(Exim's PIPE_CONNECT, Postfix's ETRN, Courier's and Cyrus's IMPLEMENTATION). Software
nothing identifies is `unknown`.

`FIXES` is the one catalogue of fixes: per fix key (a finding's id, or `id:cause` when a
probe tells causes apart, e.g. `unauth-pipelining:pipe-connect`) and per software, the
fix text. An entry is only here when that fix was applied to that software and turned
the finding `ok`; otherwise the finding gets the key's `general` advice, prefixed
"unknown server: general advice" when the software is unknown, or saying no fix was
verified for the software that answered. POP3 entries live in the same table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SOFTWARE = (
    "postfix",
    "exim",
    "opensmtpd",
    "sendmail",
    "dovecot",
    "courier",
    "cyrus",
    "unknown",
)
NAMES = {
    "postfix": "Postfix",
    "exim": "Exim",
    "opensmtpd": "OpenSMTPD",
    "sendmail": "Sendmail",
    "dovecot": "Dovecot",
    "courier": "Courier",
    "cyrus": "Cyrus",
    "unknown": "unknown server",
}
# What a greeting or an IMPLEMENTATION capability says, in order of trust.
_SELF_NAMED = (
    (re.compile(rb"\bPostfix\b", re.I), "postfix"),
    (re.compile(rb"\bExim\b", re.I), "exim"),
    (re.compile(rb"\bOpenSMTPD\b", re.I), "opensmtpd"),
    (re.compile(rb"\bSendmail\b", re.I), "sendmail"),
    (re.compile(rb"\bDovecot\b", re.I), "dovecot"),
    (re.compile(rb"\bCourier\b", re.I), "courier"),
    (re.compile(rb"\bCyrus\b", re.I), "cyrus"),
)


def identify(protocol: str, greeting: bytes, capabilities: Mapping[str, str]) -> str:
    """The software's key in SOFTWARE, from its greeting and its EHLO/CAPA keywords
    (lower-case keyword -> argument)."""
    said = b" ".join(
        [greeting, *(f"{k} {v}".encode() for k, v in capabilities.items() if k == "implementation")]
    )
    for pattern, software in _SELF_NAMED:
        if pattern.search(said):
            return software
    if protocol == "smtp":
        return _smtp_behaviour(capabilities)
    return "unknown"


def _smtp_behaviour(capabilities: Mapping[str, str]) -> str:
    """Banners are often rewritten; some EHLO keywords only one MTA offers."""
    if capabilities.keys() & {"pipeconnect", "pipe_connect", "x_pipe_connect"}:
        return "exim"
    if "etrn" in capabilities and "vrfy" in capabilities:
        return "postfix"
    return "unknown"


def fix_for(key: str, software: str) -> str | None:
    """The catalogue's fix for `key` on `software`; None when the catalogue has no such
    key (the probe's own text stands)."""
    entries = FIXES.get(key) or FIXES.get(key.partition(":")[0])
    if entries is None:
        return None
    verified = entries.get(software)
    if verified is not None:
        return f"{NAMES[software]}: {verified}"
    general = entries["general"]
    if software == "unknown":
        return f"unknown server: general advice: {general}"
    return f"{NAMES[software]}: no fix verified for this software; general advice: {general}"


# Exim's TLS options take its TLS library's syntax, and each build refuses to start with
# the other's form. The audit cannot tell the builds apart (same greeting and EHLO; only
# the suites each accepts at its defaults differ, which a hardened list hides), so Exim's
# TLS entries give both forms, each labelled with its build.
_EXIM_GNUTLS = (
    "GnuTLS build (Debian's): tls_require_ciphers = NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-RSA:-SHA1"
)
_EXIM_BUILDS = "(each build refuses the other's form; exim -bV names the library)"

FIXES: dict[str, dict[str, str]] = {
    "smuggling": {
        "general": "end DATA only at <CRLF>.<CRLF>, refuse or normalise bare LF and CR, "
        "and refuse commands pipelined before PIPELINING is offered",
        "postfix": "smtpd_forbid_bare_newline = normalize (or reject) and "
        "smtpd_forbid_unauth_pipelining = yes (both the default from 3.9); mind "
        "smtpd_forbid_bare_newline_exclusions (default $mynetworks)",
    },
    "starttls-injection": {
        "general": "upgrade the server: after STARTTLS it must discard everything "
        "received before the handshake",
    },
    "open-relay": {
        "general": "relay only for authenticated clients and your own hosts; refuse "
        "recipients outside your domains (and source-routed or %-hack forms) otherwise",
        "postfix": "smtpd_relay_restrictions = permit_mynetworks, "
        "permit_sasl_authenticated, reject_unauth_destination with a mynetworks of only "
        "your own hosts",
        "opensmtpd": "remove 'match from local for any action \"relay\"' from smtpd.conf "
        "(Debian's default: it relays for every local client)",
    },
    "open-relay:local-form": {
        "general": "these forms were accepted for local delivery (e.g. a catch-all), "
        "not relayed: refuse '%' and '!' in local parts if you do not use them",
    },
    "user-enumeration": {
        "general": "disable VRFY and EXPN, or answer them without telling users apart",
        "postfix": "disable_vrfy_command = yes (Postfix has no EXPN)",
        "sendmail": "define(`confPRIVACY_FLAGS', `needmailhelo,needexpnhelo,needvrfyhelo,"
        "restrictqrun,restrictexpand,nobodyreturn,authwarnings,noexpn,novrfy')dnl in "
        "/etc/mail/sendmail.mc (Debian's flags plus noexpn,novrfy), then sendmailconfig",
    },
    "user-enumeration:rcpt": {
        "general": "limit the rate of RCPT guesses (rate limits, tarpitting, fail2ban)",
    },
    "auth-before-tls": {
        "general": "offer AUTH only after STARTTLS",
        "postfix": "smtpd_tls_auth_only = yes",
        "sendmail": "define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl and "
        "define(`confAUTH_OPTIONS', `p')dnl in /etc/mail/sendmail.mc, then sendmailconfig "
        "(AuthOptions p offers only after STARTTLS the mechanisms open to passive attack; "
        "the default DIGEST-MD5 and CRAM-MD5 it offers in clear)",
    },
    "unauth-pipelining": {
        "general": "refuse commands sent before the server's reply allows them",
        "postfix": "smtpd_forbid_unauth_pipelining = yes (the default from 3.9)",
    },
    "unauth-pipelining:pipe-connect": {
        "general": "do not advertise early pipelining (PIPE_CONNECT) to clients you do not trust",
        "exim": "pipelining_connect_advertise_hosts = : (PIPE_CONNECT lets clients "
        "pipeline before the greeting; smtp_enforce_sync, on by default, does not stop it)",
    },
    "null-sender": {
        "general": "accept MAIL FROM:<> and a postmaster address (RFC 5321 4.5.1, 6.1)",
        "postfix": "no check_sender_access entry for <> (mind "
        "smtpd_null_access_lookup_key) and a postmaster address (virtual_alias_maps)",
    },
    "size-limit": {
        "general": "enforce the announced SIZE at MAIL (refuse a larger declared size)",
    },
    "login-delay": {
        "general": "slow down failed logins and block repeated failures (fail2ban)",
        "dovecot": "auth_failure_delay = 2 secs (the default), and no nodelay passdb extra",
    },
    "tls-versions": {
        "general": "accept TLS 1.2 and 1.3 only (RFC 8996)",
        "postfix": "smtpd_tls_protocols = >=TLSv1.2 and smtpd_tls_mandatory_protocols = >=TLSv1.2",
        "exim": f"{_EXIM_GNUTLS}; OpenSSL build: openssl_options = +no_tlsv1 +no_tlsv1_1 "
        f"{_EXIM_BUILDS}",
        "dovecot": "ssl_min_protocol = TLSv1.2",
        "courier": 'TLS_PRIORITY="NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-SHA1:-RSA" in '
        "/etc/courier/pop3d-ssl (Debian's couriertls is built with GnuTLS)",
    },
    "weak-ciphers": {
        "general": "offer only ECDHE suites with AEAD ciphers (no anonymous, static RSA "
        "or CBC-SHA1 suites)",
        "postfix": "smtpd_tls_exclude_ciphers = aNULL, kRSA, SHA1 (client ports: "
        "smtpd_tls_mandatory_exclude_ciphers too)",
        "exim": f"{_EXIM_GNUTLS}; OpenSSL build: tls_require_ciphers = "
        f"ECDHE+AESGCM:ECDHE+CHACHA20 {_EXIM_BUILDS}",
        "dovecot": "ssl_cipher_list = ECDHE+AESGCM:ECDHE+CHACHA20 (and ssl_min_protocol)",
        "sendmail": "define(`confCIPHER_LIST', `ECDHE+AESGCM:ECDHE+CHACHA20')dnl in "
        "/etc/mail/sendmail.mc, then sendmailconfig",
        "courier": 'TLS_PRIORITY="NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-SHA1:-RSA" in '
        "/etc/courier/pop3d-ssl (a GnuTLS priority string: no CBC-SHA1, no static RSA)",
        "cyrus": "tls_ciphers: ECDHE+AESGCM:ECDHE+CHACHA20 in /etc/imapd.conf",
    },
    "certificate": {
        "general": "serve the leaf with its intermediates, for the name clients use, with "
        "an RSA key of 2048 bits or more (or ECDSA), and renew before it expires",
        "dovecot": "ssl_cert = <fullchain.pem (the leaf with its intermediates, for the "
        "name clients use), and renew before it expires",
    },
    # POP3 (the TLS entries above serve POP3 too).
    "stls-injection": {
        "general": "upgrade the server: after STLS it must discard everything received "
        "before the handshake; until then serve POP3 on port 995 (implicit TLS) only",
        "courier": "POP3_STARTTLS=NO in /etc/courier/pop3d-ssl, and clients on port 995 "
        "(courier-pop 1.0.16 answers commands pipelined with STLS inside the TLS)",
    },
    "auth-before-tls:pop3": {
        "general": "offer USER and SASL PLAIN/LOGIN only after STLS (or on port 995 only)",
        "dovecot": "disable_plaintext_auth = yes (2.4: auth_allow_cleartext = no)",
        "courier": "POP3_TLS_REQUIRED=1 in /etc/courier/pop3d-ssl (CAPA still lists USER, "
        "which is then refused until STLS)",
        "cyrus": "allowplaintext: no in /etc/imapd.conf",
    },
    "apop": {
        "general": "do not offer APOP (no timestamp in the greeting)",
        "dovecot": "auth_mechanisms without apop (e.g. auth_mechanisms = plain login)",
        "cyrus": "allowapop: no in /etc/imapd.conf",
    },
    "banner": {
        "general": "a greeting that names no version",
        "dovecot": 'login_greeting = POP3 ready. (its default "Dovecot ready." names no version)',
        "cyrus": "serverinfo: off in /etc/imapd.conf (CAPA's IMPLEMENTATION then names "
        "no version either)",
    },
}
