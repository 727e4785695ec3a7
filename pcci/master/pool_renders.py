"""Finished pools' answers to ``GET /pool/ID``, rendered once and shared by every reader.

A dashboard left open on a finished pool, or a hundred ``pcci run`` waiters woken by the
same pool's end, read the same bytes: without this each reader held its own rendering
(a pool with 4 MiB of output cost 4.5 MB per idle reader: 200 readers took the master
to 898 MB). A running pool changes with every piece of output and is rendered per
request. The key includes what could still change on a finished pool (a late result
correcting a ``lost`` job), so a cached answer is never stale. Pure: no I/O, no clock.
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

    def body(self, pool, variant: Hashable, render: Callable[[], bytes]) -> bytes:
        """The answer's bytes: cached for a finished pool (per ``variant``: what the caller
        may see), rendered afresh for a running one."""
        if pool.status is not PoolStatus.DONE:
            return render()
        key = (pool.pool_id, variant, fingerprint(pool))
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
