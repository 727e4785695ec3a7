"""Logging for the services: one line per event on stderr, which journald collects.

Every message is made one printable line at the formatter, the one edge all log lines
pass: a request path or a peer's text holding a newline or an escape sequence
(`GET /x%0AWARNING ...`) cannot forge a log line or drive the terminal. Tracebacks,
which are ours, keep their lines.

Under systemd, where stderr is the journal's stream, each line starts with its syslog
priority (`<3>` for an error): journald files it at that priority (the units' default
SyslogLevelPrefix=yes), so `journalctl -p err` finds errors. Elsewhere (a terminal, the
quickstart's log files) lines stay as they are.
"""

import logging
import os
import sys

# Python's levels as syslog priorities (RFC 5424): what journald files a line under.
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
DEBUG_PRIORITY = 7


def said(value, limit=300):
    """Words a peer sent, cut at ``limit`` characters for one log line (a frame may carry
    16 MiB of them); ``printable`` escapes their control characters at the formatter."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def printable(text):
    """Text as one log line: control characters shown escaped, not obeyed."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def priority(levelno):
    for level, value in PRIORITIES:
        if levelno >= level:
            return value
    return DEBUG_PRIORITY


def with_priority(text, levelno):
    """Each line of a formatted record prefixed with its priority (a traceback's too)."""
    prefix = "<%d>" % priority(levelno)
    return "\n".join(prefix + line for line in text.split("\n"))


def stderr_is_journal(environ=os.environ, stream=sys.stderr):
    """Whether stderr is the journal's stream: systemd names it in JOURNAL_STREAM
    (device:inode), which a process started from a service but writing elsewhere inherits."""
    named = environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in named.split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


class OneLineFormatter(logging.Formatter):
    def __init__(self, fmt, to_journal=False):
        super().__init__(fmt)
        self.to_journal = to_journal

    def formatMessage(self, record):
        record.message = printable(record.message)
        return super().formatMessage(record)

    def format(self, record):
        text = super().format(record)
        return with_priority(text, record.levelno) if self.to_journal else text


def setup(level_name):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s", to_journal=stderr_is_journal()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name.upper()))
