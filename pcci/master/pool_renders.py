"""Answers to ``GET /pool/ID``, rendered once for each state of a pool and shared by
every reader of that state.

A dashboard left open on a pool, or a hundred ``pcci run`` waiters woken by the same
pool's end, read the same bytes: without this each reader held its own rendering (a
pool with 4 MiB of output cost 4.5 MB per idle reader: 200 readers took the master to
898 MB). The key holds what can change: a running pool's live version (its feed's last
event, which moves with every piece of output) and, for any pool, its jobs' states and
ends (a late result may correct a finished pool's ``lost`` job), so an answer is never
stale. A running pool without a live version (a standby's) is rendered each time.
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
        self.entries: "collections.OrderedDict[Tuple, bytes]" = collections.OrderedDict()
        self.size = 0

    def body(self, pool, variant: Hashable, render: Callable[[], bytes], live_version: Hashable = None) -> bytes:
        """The answer's bytes, per ``variant`` (what the caller may see): cached for a
        finished pool and for a running one's ``live_version``."""
        if pool.status is not PoolStatus.DONE and live_version is None:
            return render()
        key = (pool.pool_id, variant, fingerprint(pool), live_version)
        cached = self.entries.get(key)
        if cached is not None:
            self.entries.move_to_end(key)
            return cached
        body = render()
        if len(body) <= self.max_bytes // 4:
            self.entries[key] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _, dropped = self.entries.popitem(last=False)
                self.size -= len(dropped)
        return body
