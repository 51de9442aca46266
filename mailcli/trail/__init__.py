"""The trail: one line per message sent and per fetch run, appended to a log file or
sent to syslog (`--log FILE`, the `log` key), so cron jobs leave a record.

`line` is the format (key=value pairs, values escaped so one record is one line),
`records` builds the lines from the results of send, sendmail, `queue run` and fetch,
`sink` appends them (a file opened O_APPEND, one write per line; or /dev/log). It
imports smtp, sendmail and fetch only for their result types; only cli imports it, and
only when a log is configured.
"""
