"""The sendmail front end for cron: the sendmail command line and its message rules
(arguments), the durable local queue (spool), deliver now or queue for later (deliver).

May import: the base modules and smtp. Must never import it: the base modules, smtp,
pop3, fetch, check.
"""
