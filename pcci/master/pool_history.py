"""Pool reads straight from the store: a standby's whole history, and what an active
master reads once a pool has left its memory."""

import gevent

from ..clock import monotonic
from ..errors import UnknownPool
from .pool_ids import is_pool_id

# How often GET /pool/ID?wait=N on a standby looks at the database again.
WAIT_POLL_SECONDS = 0.5


def unknown_pool(pool_id):
    """The 404 for a pool neither memory nor the store holds."""
    return UnknownPool("no pool with id %r (it may have been purged)" % pool_id)


class StoreHistory:
    """The pool reads a standby answers, straight from the database."""

    def __init__(self, store):
        self.store = store

    def find(self, pool_id):
        """The stored pool, or None (also for an id that cannot be one: no store read)."""
        return self.store.get_pool(pool_id) if is_pool_id(pool_id) else None

    def get(self, pool_id):
        pool = self.find(pool_id)
        if pool is None:
            raise unknown_pool(pool_id)
        return pool

    def wait(self, pool_id, seconds):
        pool = self.get(pool_id)
        deadline = monotonic() + seconds
        while not pool.done and monotonic() < deadline:
            gevent.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - monotonic())))
            pool = self.get(pool_id)
        return pool

    @staticmethod
    def live_output(pool):
        return {}           # output in flight is only on the active master

    @staticmethod
    def live_spilled_bytes(pool):
        return 0

    @staticmethod
    def live_version(pool):
        return None         # nor its version: a running pool is read again for each answer

    def list(self, status, before, limit):
        return self.store.pool_page(status, before, limit)
