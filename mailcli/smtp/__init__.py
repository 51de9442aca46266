"""SMTP submission: the envelope and the outgoing message (envelope), messages
composed from options (compose) or given ready (rawmessage), smtplib traced line by line
with bounded replies (wire), reply codes and replies (reply), and the session that
submits (session): its pipelined transaction (pipeline), result (result), login (auth),
EHLO name (ehloname), DSN parameters (dsn), international domains as A-labels (idn),
and relay failover across an account's fallbacks (failover).

May import: the base modules. Must never import it: the base modules, pop3, fetch.
"""
