"""Frames about a job the master does not run there: answered once, not once a frame (pure).

A worker that sends a fetch's chunks (or a copy's ``copy_from``) for a job the master is
not running on it -- the job ended, or was given up on while its worker was away -- is
told to stop it with a ``kill``. Without this, every such frame got a kill of its own,
and the worker answers each kill with a ``kill_result``: a stale or misbehaving stream
made the master write one frame for each frame it sent, and read one more back, for as
long as it sent. So a (session, job) pair is answered at most once in ``window`` seconds.

Memory is bounded before it is spent: at most ``capacity`` pairs are remembered, the
oldest answer forgotten first (a worker naming ever new job ids gets an answer for each,
as it would for any job, but cannot grow this). Forgetting only costs one more kill.
A session's pairs go with it (``forget``): a worker that dials again is answered again,
since the kill sent on the old link may have been lost with it.
"""

import collections

WINDOW_SECONDS = 10.0
CAPACITY = 1024


class AnswerOnce:
    def __init__(self, window=WINDOW_SECONDS, capacity=CAPACITY):
        self.window = window
        self.capacity = capacity
        self.answered = collections.OrderedDict()      # (session, job id) -> when answered, oldest first

    def due(self, session, job, now):
        """Whether to answer a frame about ``job`` on ``session`` now; if so it counts as answered."""
        key = (session, job)
        when = self.answered.get(key)
        if when is not None and now - when < self.window:
            return False
        self.answered.pop(key, None)
        self.answered[key] = now
        while len(self.answered) > self.capacity:
            self.answered.popitem(last=False)
        return True

    def forget(self, session):
        """The session ended: its answers go (and with them the references to it)."""
        for key in [key for key in self.answered if key[0] is session]:
            del self.answered[key]
