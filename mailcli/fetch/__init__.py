"""fetch: new POP3 mail into a destination exactly once. The run and its durability
contract (run), which UIDs of a mailbox are delivered (state), and the destinations: what
each promises (destination), `--to` parsed into one (open), one module per kind (maildir,
mbox and its crash journal mboxjournal, mda).

May import: the base modules, auth (the environment of an MDA) and pop3. Must never
import it: the base modules, smtp, sendmail, pop3, check.
"""
