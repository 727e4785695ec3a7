"""The copies this worker was told to pass on (``relayKey`` in their ``copy_begin``): what
its relay listener may serve, and nothing else.

A source is one copy's partial file as this worker writes it: the listener reads the
bytes below ``offset`` (already written) with ``pread`` from its own duplicate of the
file's descriptor, which stays valid after the file is renamed into place or unpacked,
and waits on ``changed`` for more. A source is withdrawn when the copy is killed or
refused here (its children's connections close: they go on from the master); once its
file is whole it stays for ``LINGER_SECONDS`` so that slower children can finish, then
goes. At most ``MAX_SOURCES`` at a time (the oldest goes first).
"""

import collections
import logging
import os

import gevent
from gevent.event import Event

log = logging.getLogger(__name__)

LINGER_SECONDS = 120.0
MAX_SOURCES = 16


class Source:
    __slots__ = ("job", "sha256", "size", "key", "children", "fd", "stream", "changed", "withdrawn")

    def __init__(self, job, stream, key, children):
        self.job, self.sha256, self.size, self.key = job, stream.sha256, stream.size, key
        self.children = frozenset(children)     # the addresses its children dial from
        self.stream = stream        # the PartialFile being written (its offset grows)
        self.fd = os.dup(stream.fd)
        self.changed = Event()
        self.withdrawn = False

    @property
    def offset(self):
        return self.stream.offset

    def wake(self):
        changed, self.changed = self.changed, Event()
        changed.set()

    def close(self):
        self.withdrawn = True
        self.wake()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class RelaySources:
    def __init__(self, linger=LINGER_SECONDS, most=MAX_SOURCES):
        self.linger, self.most = linger, most
        self.sources = collections.OrderedDict()        # job id -> Source
        self.offered = Event()                          # set and renewed at each offer

    def offer(self, job, stream, key, children):
        """Pass this copy on to the children the master gave tickets to."""
        self.withdraw(job)
        self.sources[job] = Source(job, stream, key, children)
        while len(self.sources) > self.most:
            _, oldest = self.sources.popitem(last=False)
            oldest.close()
        offered, self.offered = self.offered, Event()
        offered.set()

    def get(self, job):
        return self.sources.get(job)

    def wait_for(self, job, timeout):
        """The source of ``job`` once it is offered (a child may dial before its parent's
        copy_begin arrived), or None after ``timeout`` seconds."""
        with gevent.Timeout(timeout, False):
            while job not in self.sources:
                self.offered.wait()
        return self.sources.get(job)

    def grew(self, job):
        source = self.sources.get(job)
        if source is not None:
            source.wake()
            if source.offset == source.size:
                gevent.spawn_later(self.linger, self._expire, source)

    def withdraw(self, job):
        source = self.sources.pop(job, None)
        if source is not None:
            source.close()

    def _expire(self, source):
        if self.sources.get(source.job) is source:
            self.withdraw(source.job)

    def is_child_address(self, address):
        return any(address in source.children for source in self.sources.values())

    def close(self):
        for job in list(self.sources):
            self.withdraw(job)
