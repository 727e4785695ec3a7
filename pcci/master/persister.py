"""Write-behind for pool changes: many changes, one transaction, then the acknowledgements.

Changes are coalesced while the previous batch commits, so a fan-out to many workers
or a burst of results costs a handful of transactions, not one per job. A worker's
result is acknowledged only after the transaction that holds it has committed: an
acknowledged result is on the master's disk.
"""

import logging

import gevent
from gevent.event import AsyncResult, Event

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class Persister:
    def __init__(self, store, on_committed=None):
        self.store = store
        self.on_committed = on_committed or (lambda pools: None)
        self._pools = {}
        self._jobs = {}
        self._after_commit = []
        self._waiters = []
        self._wake = Event()
        self._loop = gevent.spawn(self._run)

    def mark(self, pool, jobs=(), after_commit=None):
        """Queue a pool (and some of its jobs) for saving; after_commit runs once it is on disk."""
        self._pools[pool.pool_id] = pool
        for job in jobs:
            self._jobs[job.job_id] = job
        if after_commit is not None:
            self._after_commit.append(after_commit)
        self._wake.set()

    def committed(self):
        """An AsyncResult that is set when everything marked so far is on disk."""
        waiter = AsyncResult()
        self._waiters.append(waiter)
        self._wake.set()
        return waiter

    def _run(self):
        while True:
            self._wake.wait()
            self._wake.clear()
            pools, jobs = list(self._pools.values()), list(self._jobs.values())
            callbacks, waiters = self._after_commit, self._waiters
            self._pools, self._jobs, self._after_commit, self._waiters = {}, {}, [], []
            try:
                if pools or jobs:
                    self.store.save(pools, jobs)
            except Exception:
                # Keep everything queued and try again: nothing is acknowledged until it is on disk.
                log.exception("could not save %d pool(s) to the store; retrying in %ss", len(pools), RETRY_SECONDS)
                self._requeue(pools, jobs, callbacks, waiters)
                gevent.sleep(RETRY_SECONDS)
                continue
            for callback in callbacks:
                callback()
            for waiter in waiters:
                waiter.set(True)
            self.on_committed(pools)

    def _requeue(self, pools, jobs, callbacks, waiters):
        for pool in pools:
            self._pools.setdefault(pool.pool_id, pool)
        for job in jobs:
            self._jobs.setdefault(job.job_id, job)
        self._after_commit[:0] = callbacks
        self._waiters[:0] = waiters
        self._wake.set()

    def flush(self, timeout=10.0):
        self.committed().get(timeout=timeout)

    def stop(self):
        self._loop.kill()
