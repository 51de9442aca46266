"""POP3: multi-line responses scanned in blocks, un-stuffed or shown as sent (multiline),
poplib with traced, bounded lines (wire: only the session uses it), the session with its
one guarded write/read path (session) and the mailbox commands STAT,
LIST, UIDL, TOP, RETR, DELE on an open session (commands); the session's phases, for
`--quit-after` without importing poplib (phases).

May import: the base modules. Must never import it: the base modules, smtp, sendmail.
"""
