"""Answers to ``GET /pool/ID``, rendered once for each state of a pool and shared by
every reader of that state.

A dashboard left open on a pool, or a hundred ``pcci run`` waiters woken by the same
pool's end, read the same bytes: without this each reader held its own rendering (a
pool with 4 MiB of output cost 4.5 MB per idle reader: 200 readers took the master to
898 MB). What an answer depends on is its state: a running pool's live version (its
feed's last event, which moves with every job change and piece of output), a finished
pool's jobs' states and ends (a late result may correct a ``lost`` job), so an answer is
never stale. A running pool without a live version (a standby's) is rendered each time.
One answer is kept a pool and caller kind: its latest state's.
Pure: no I/O, no clock.
"""

import collections
from typing import Callable, Hashable, Tuple

from ..states import PoolStatus

# All cached answers together; one answer larger than a quarter of it is not kept.
CACHE_BYTES = 64 * 1024 * 1024


def fingerprint(pool) -> Hashable:
    """What a finished pool's rendering depends on that can still change."""
    return (pool.end_time, pool.exit_code, pool.killed_by,
            hash(tuple((name, job.state, job.exit_code, job.end_time) for name, job in pool.jobs.items())))


class PoolRenders:
    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        # (pool id, variant) -> (state, bytes): one answer a pool and variant, its latest
        # state's (an older state's answer is never asked for again).
        self.entries: "collections.OrderedDict[Tuple, Tuple[Hashable, bytes]]" = collections.OrderedDict()
        self.size = 0

    @property
    def largest(self) -> int:
        """The largest answer kept."""
        return self.max_bytes // 4

    def body(self, pool, variant: Hashable, render: Callable[[], bytes], live_version: Hashable = None) -> bytes:
        """The answer's bytes, per ``variant`` (what the caller may see): cached for a
        finished pool and for a running one's ``live_version``, which moves with every job
        change and piece of output (so its jobs need not be looked at)."""
        if live_version is not None:
            state = live_version
        elif pool.status is PoolStatus.DONE:
            state = fingerprint(pool)
        else:
            return render()
        key = (pool.pool_id, variant)
        entry = self.entries.get(key)
        if entry is not None and entry[0] == state:
            self.entries.move_to_end(key)
            return entry[1]
        if entry is not None:
            del self.entries[key]
            self.size -= len(entry[1])
        body = render()
        if len(body) <= self.largest:
            self.entries[key] = (state, body)
            self.size += len(body)
            while self.size > self.max_bytes:
                _, (_, dropped) = self.entries.popitem(last=False)
                self.size -= len(dropped)
        return body
