"""An append-only log of events that any number of followers read at their own pace.

The one mechanism behind ``GET /pool/<id>/events`` (a pool's log, closed when the pool
ends) and ``GET /events`` (the cluster's, a ring of the latest events). Followers
share the log's entries: a hundred followers of one pool cost one copy of its output.

An event's id is ``GENERATION-SEQ``. ``SEQ`` counts the log's events from 1; the
generation names this log, so an id from another log (one that no longer exists: the
master restarted, or the pool's log was rebuilt from its stored result) is recognised
as such, and the follower is told to start over instead of being given a wrong
continuation.
"""

import os
import re

from gevent.event import Event


def new_generation():
    return os.urandom(4).hex()


class BadCursor(ValueError):
    """A Last-Event-ID (or ?since=) that is not an event id."""


def parse_cursor(text):
    """(generation or None, seq) from ``GEN-SEQ`` or a bare ``SEQ``; BadCursor otherwise."""
    generation, dash, seq = text.strip().rpartition("-")
    if not re.fullmatch(r"[0-9]{1,18}", seq) or (dash and not re.fullmatch(r"[A-Za-z0-9-]+", generation)):
        raise BadCursor("%r is not an event id (GENERATION-NUMBER, as sent in the stream's id: lines)" % text[:80])
    return (generation or None), int(seq)


class EventLog:
    """Entries are (seq, kind, data); ``data`` is whatever the log's owner serialises later.
    ``keep`` bounds a ring (the oldest entries leave); None keeps everything."""

    def __init__(self, generation=None, keep=None):
        self.generation = generation or new_generation()
        self.keep = keep
        self.entries = []
        self.first_seq = 1          # seq of entries[0]
        self.closed = False
        self._changed = Event()

    @property
    def last_seq(self):
        return self.first_seq + len(self.entries) - 1

    def append(self, kind, data):
        if self.closed:
            return
        self.entries.append((self.last_seq + 1, kind, data))
        if self.keep is not None and len(self.entries) > 2 * self.keep:
            # Trim in batches, so a ring costs no more per append than a list.
            drop = len(self.entries) - self.keep
            del self.entries[:drop]
            self.first_seq += drop
        self._wake()

    def close(self):
        self.closed = True
        self._wake()

    def _wake(self):
        changed, self._changed = self._changed, Event()
        changed.set()

    def continues(self, generation, seq):
        """Whether a follower at (generation, seq) can carry on here without a gap."""
        return (generation in (None, self.generation)) and self.first_seq - 1 <= seq <= self.last_seq

    def after(self, seq, limit=None):
        """The entries after ``seq`` (a list, possibly empty; at most ``limit``). A ``seq``
        older than the oldest entry kept gives the oldest entries: the caller checks
        ``first_seq`` to see the gap (``sse`` announces it)."""
        start = max(0, seq - self.first_seq + 1)
        return self.entries[start:] if limit is None else self.entries[start:start + limit]

    def wait(self, seq, timeout):
        """Until there is an entry after ``seq``, the log closes, or the timeout passes."""
        changed = self._changed
        if self.last_seq > seq or self.closed:
            return
        changed.wait(timeout)

    def event_id(self, seq):
        return "%s-%d" % (self.generation, seq)
