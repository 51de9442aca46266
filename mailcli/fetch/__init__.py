"""fetch: new POP3 mail into a destination exactly once. The run and its durability
contract (run), what a run fetches, skips or deletes unread (plan, retention), the run's
records (summary), which UIDs of a mailbox are delivered and when (state), and the
destinations: what each promises (destination), `--to` parsed into one (open), one
module per kind (maildir, mbox and its crash journal mboxjournal, mda, lmtp). Around
them: the envelope sender (sender), the optional Received line (received), the header
filter (filter), several accounts in one run (accounts).

May import: the base modules, auth (the environment of an MDA) and pop3. Must never
import it: the base modules, smtp, sendmail, pop3, check.
"""
