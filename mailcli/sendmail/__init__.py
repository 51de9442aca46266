"""The sendmail front end for cron: the sendmail command line and its message rules
(arguments), which account sends (choice), the durable local queue (spool, entry),
deliver now or queue for later (deliver).

May import: the base modules and smtp. Must never import it: the base modules, smtp,
pop3, fetch, check.
"""
