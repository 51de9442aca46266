"""The parts of the man pages written by hand: what `--help` has no room for.

Plain text, no roff (mailcli.cli.manpage escapes it). Keys are page names
(`mailcli`, `mailcli-send`, `mailcli-queue-run`); the generator refuses a key that names
no command. The exit codes' table is not here: it is the README's.
Entries are (term, text); notes are paragraphs; an example is (what it does, the
command lines).
"""

from __future__ import annotations

EXIT_STATUS_ELSEWHERE = (
    "The codes of sysexits.h; the table is in mailcli(1). Errors are one line on stderr, "
    "mailcli: error: ..., with --debug a traceback before it."
)

ENVIRONMENT = {
    "mailcli": [
        ("MAILCLI_CONFIG", "The config file, as --config gives it."),
        ("MAILCLI_ACCOUNT", "The account, as -a gives it."),
        (
            "MAILCLI_SMTP_HOST, MAILCLI_SMTP_PORT, MAILCLI_SMTP_SECURITY, MAILCLI_SMTP_USER, "
            "MAILCLI_SMTP_TIMEOUT",
            "The SMTP server's settings, between the options and the config file; the "
            "same with POP3 for the POP3 server. An empty user means no user.",
        ),
        (
            "MAILCLI_USER",
            "The login name for both protocols: after MAILCLI_SMTP_USER or MAILCLI_POP3_USER "
            "and the server table's user, before the account's.",
        ),
        ("MAILCLI_PASSWORD", "The password: the first source the credential chain asks."),
        (
            "MAILCLI_PASSWORD_COMMAND",
            "A command printing the password, after --password-command and before the "
            "account's password_command; empty means none.",
        ),
        ("NETRC", "The netrc file the credential chain reads (default ~/.netrc)."),
        ("ALL_PROXY", 'The SOCKS5 proxy, read only for a server whose proxy key is "env".'),
        (
            "XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_CACHE_HOME",
            "Where the config file, the state (queue, fetch state, OAuth2 tokens) and "
            "the cached access tokens are kept.",
        ),
        ("NO_COLOR", "Set: no colour on a terminal."),
    ],
    "mailcli-fetch": [
        (
            "MAILCLI_FETCH_BATCH",
            "Messages per batch for Maildir and mbox (default 256); a crash fetches at "
            "most the batch in flight again.",
        ),
    ],
}

FILES = {
    "mailcli": [
        (
            "~/.config/mailcli/config.toml",
            "The accounts (TOML); $XDG_CONFIG_HOME/mailcli/config.toml when that is set. "
            "A missing file at this place is fine: options and environment are enough.",
        ),
        (
            "~/.local/state/mailcli/queue/",
            "The sendmail queue: messages waiting for mailcli queue run.",
        ),
        (
            "~/.local/state/mailcli/fetch/",
            "The UIDs fetch has stored, one file per mailbox.",
        ),
        (
            "~/.local/state/mailcli/oauth/",
            "OAuth2 tokens and client registrations when token_store is file.",
        ),
        ("~/.local/state/mailcli/shell_history", "The history of mailcli shell."),
        (
            "~/.netrc",
            "Passwords, as msmtp, mpop and curl read them; only if no one else may read it.",
        ),
    ],
    "mailcli-sendmail": [
        (
            "~/.local/state/mailcli/queue/",
            "What could not be delivered now: ID.json and ID.eml, retried by mailcli queue run.",
        ),
    ],
    "mailcli-fetch": [
        (
            "~/.local/state/mailcli/fetch/",
            "The UIDs stored, one file per mailbox (account, user, host).",
        ),
    ],
}

NOTES = {
    "mailcli": [
        "The global options -a, --json, --trace, --trace-data, --trace-time and -q go before "
        "or after the command name: mailcli --json account list and mailcli account list "
        "--json are the same. --config, --debug and --version go before it.",
        "stdout carries data: a table on a terminal, tab-separated lines with stable columns "
        "when piped, one JSON document with --json. stderr carries messages: errors are one "
        "line, mailcli: error: ..., sometimes followed by a line mailcli: hint: ... saying "
        "what to do.",
        "A password comes from the first of: MAILCLI_PASSWORD; the password command "
        "(--password-command, MAILCLI_PASSWORD_COMMAND or the account's password_command); "
        "the OS keyring (service mailcli, user USER@HOST); ~/.netrc; a prompt when stdin "
        "is a terminal. mailcli password where says which one would answer. Passwords "
        "never live in the config file or on the command line.",
    ],
}

EXAMPLES = {
    "mailcli": [
        (
            "Send a report from a script, the body on stdin:",
            'df -h | mailcli send --to ops@example.org --subject "disk on $(hostname)"',
        ),
        ("Count the messages in the default account's POP3 mailbox:", "mailcli stat"),
        (
            "Fetch new mail from cron, silent unless something is wrong:",
            "*/5 * * * * mailcli fetch -q",
        ),
    ],
    "mailcli-send": [
        (
            "Headers say one thing, the envelope decides delivery:",
            "mailcli send --host smtp.example.org --user alice \\\n"
            "    --from 'The CEO <ceo@example.org>' --to all-staff@example.org \\\n"
            "    --envelope-from bounces@example.org --rcpt alice@example.org \\\n"
            "    --subject 'Quarterly numbers' --body 'See attached.' --attach q3.pdf",
        ),
        (
            "What would go out, without connecting anywhere:",
            "mailcli send --to bob@example.org --bcc audit@example.org --body hi --dry-run",
        ),
        ("A ready RFC 5322 message, as is:", "mailcli send --message report.eml"),
    ],
    "mailcli-sendmail": [
        (
            "Let cron's mail go through mailcli, and retry what waits every ten minutes:",
            'ln -sf "$(command -v mailcli)" /usr/sbin/sendmail\n'
            "( crontab -l; echo '*/10 * * * * mailcli queue run -q' ) | crontab -",
        ),
        ("What Debian's cron runs:", "mailcli sendmail -FCronDaemon -i -B8BITMIME -oem root"),
    ],
    "mailcli-queue-run": [
        (
            "Retry from cron, one log line per message:",
            "*/10 * * * * mailcli queue run -q --log ~/mail.log",
        ),
    ],
    "mailcli-fetch": [
        ("New mail into ~/Maildir, kept on the server:", "mailcli fetch"),
        ("Into an mbox, deleted from the server:", "mailcli fetch --to mbox:~/mail/inbox --delete"),
        ("Through an MDA:", "mailcli fetch --to mda:'procmail -d alice' --max-size 10000000"),
    ],
    "mailcli-account-add": [
        (
            "An account for both servers, made the default:",
            "mailcli account add work --from 'Ann <ann@example.org>' --user ann \\\n"
            "    --smtp-host smtp.example.org --pop3-host pop.example.org --default",
        ),
    ],
    "mailcli-account-import": [
        (
            "What would be imported from ~/.msmtprc and ~/.mpoprc, writing nothing:",
            "mailcli account import --dry-run",
        ),
        (
            "Switch from mpop without fetching again what it already delivered:",
            "mailcli account import --with-passwords --with-state",
        ),
    ],
    "mailcli-password-set": [
        (
            "Store the password of alice at pop.example.org:",
            "mailcli password set alice@pop.example.org",
        ),
        (
            "From a script, the first line of stdin:",
            'echo "$PW" | mailcli password set alice@pop.example.org',
        ),
    ],
    "mailcli-check": [
        (
            "What a submission server offers, and known weaknesses:",
            "mailcli check smtp --host smtp.example.org --port 587\n"
            "mailcli check smtp --host smtp.example.org --audit",
        ),
    ],
}

SEE_ALSO = {
    "mailcli": ["msmtp(1)", "mpop(1)", "sendmail(8)"],
    "mailcli-sendmail": ["sendmail(8)", "crontab(5)"],
}


def page_names() -> set[str]:
    """Every page some table here writes for."""
    return {*ENVIRONMENT, *FILES, *NOTES, *EXAMPLES, *SEE_ALSO}
