"""Logging for the services: one line per event on stderr, which journald collects."""

import logging
import sys


def setup(level_name):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name.upper()))
