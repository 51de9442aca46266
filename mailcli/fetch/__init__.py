"""fetch: new POP3 mail into a destination exactly once. The run and its durability
contract (run), which UIDs of a mailbox are delivered (state), the destinations
(destination: Maildir, MDA, the dry-run preview; mbox and its journal: mbox, mboxjournal).

May import: the base modules, auth (the environment of an MDA) and pop3. Must never
import it: the base modules, smtp, sendmail, pop3, check.
"""
