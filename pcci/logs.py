"""Logging for the services: one line per event on stderr, which journald collects.

Every message is made one printable line at the formatter, the one edge all log lines
pass: a request path or a peer's text holding a newline or an escape sequence
(`GET /x%0AWARNING ...`) cannot forge a log line or drive the terminal. Tracebacks,
which are ours, keep their lines.
"""

import logging
import sys


def printable(text):
    """Text as one log line: control characters shown escaped, not obeyed."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record):
        record.message = printable(record.message)
        return super().formatMessage(record)


def setup(level_name):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name.upper()))
