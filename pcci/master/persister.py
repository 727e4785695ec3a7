"""Write-behind for pool and worker changes: many changes, one transaction, then the
acknowledgements.

Changes are coalesced while the previous batch commits, so a fan-out to many workers
or a burst of results costs a handful of transactions, not one per job. A worker's
result is acknowledged only after the transaction that holds it has committed: an
acknowledged result is on the master's disk.

Two kinds of failure, kept apart:

* the store cannot write now (disk full, file locked, I/O error): everything stays
  queued, nothing is acknowledged, and the batch is tried again; ``health()`` says so.
* one record cannot be written at all (a value the database refuses): the batch is
  split, the records that do save are saved, and the bad pool is dropped and reported
  to the ``on_unsavable`` given with its marks, so it can never block the others.
"""

import errno
import logging
import sqlite3

import gevent
from gevent.event import AsyncResult, Event

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# Raised by a value that no retry will ever store.
DATA_ERRORS = (UnicodeError, OverflowError, ValueError, sqlite3.InterfaceError,
               sqlite3.IntegrityError, sqlite3.DataError)


class Unsavable(Exception):
    """What committed() waiters get for a pool that was dropped because it cannot be stored."""


class Persister:
    def __init__(self, store, clock=None, data_errors=()):
        self.store = store
        # What the store's backend raises for a value it refuses (beyond SQLite's, always known).
        self.data_errors = DATA_ERRORS + tuple(data_errors)
        self._clock = clock
        self._pools = {}
        self._jobs = {}
        self._workers = {}
        self._after_commit = []
        self._waiters = []
        self._wake = Event()
        self.failing_since = None           # when the current run of failed saves began
        self.last_error = None
        self.disk_full = False
        self._forgotten = set()             # pools given up on while a save of theirs was under way
        self._loop = gevent.spawn(self._run)

    # -- queueing ----------------------------------------------------------------------
    def mark(self, pool, jobs=(), after_commit=None, on_unsavable=None):
        """Queue a pool (and some of its jobs) for saving; after_commit runs once it is on disk."""
        self.mark_many([pool], jobs, after_commit, on_unsavable)

    def mark_many(self, pools, jobs=(), after_commit=None, on_unsavable=None):
        """Queue pools and jobs. after_commit() runs once all are on disk; if one of them can
        never be stored, on_unsavable(pool_id, error) runs instead, for each such pool."""
        for pool in pools:
            self._pools[pool.pool_id] = pool
        for job in jobs:
            self._jobs[job.job_id] = job
        if after_commit is not None or on_unsavable is not None:
            self._after_commit.append((pools, after_commit, on_unsavable))
        self._wake.set()

    def mark_worker(self, record):
        """Queue a worker's record (a store.WorkerRecord); the newest record of a name wins."""
        self._workers[record.name] = record
        self._wake.set()

    def forget_worker(self, name):
        """Queue the deletion of a worker's record (None stands for it): a record of the
        name queued before is dropped, one queued after (the worker came back) wins; a
        save under way when this is called commits first."""
        self._workers[name] = None
        self._wake.set()

    def committed(self, pool_id=None):
        """An AsyncResult that is set when everything marked so far is on disk; its get()
        raises Unsavable if pool_id's pool was dropped instead."""
        waiter = AsyncResult()
        self._waiters.append((pool_id, waiter))
        self._wake.set()
        return waiter

    @property
    def backlog(self):
        return len(self._jobs) + len(self._pools)

    def health(self):
        """None while saving works, else why, since when (wall ms), and whether the disk is full."""
        damage = self.store.damage
        if damage is not None:
            # Found by a read, perhaps, before any save failed: nothing is saved from now on.
            return {"error": damage.message, "since": damage.since, "full": False}
        if self.failing_since is None:
            return None
        return {"error": self.last_error, "since": self.failing_since, "full": self.disk_full}

    def forget(self, pool_id):
        """Give up on saving a pool that is still queued (its submit was refused)."""
        self._pools.pop(pool_id, None)
        for job_id in [job_id for job_id, job in self._jobs.items() if job.pool_id == pool_id]:
            del self._jobs[job_id]
        self._forgotten.add(pool_id)

    # -- the loop ----------------------------------------------------------------------
    def _run(self):
        while True:
            self._wake.wait()
            self._wake.clear()
            batch = (self._pools, self._jobs, self._workers, self._after_commit, self._waiters)
            self._pools, self._jobs, self._workers, self._after_commit, self._waiters = {}, {}, {}, [], []
            pools, jobs, workers, callbacks, waiters = batch
            try:
                dropped = self._save(pools, jobs, workers)
            except Exception as exc:
                # The store cannot write now: keep everything queued, acknowledge nothing.
                self._failed(exc, len(pools) + len(workers))
                self._requeue(*batch)
                gevent.sleep(RETRY_SECONDS)
                continue
            self._forgotten.clear()
            if self.failing_since is not None:
                log.warning("the store is saving again")
                self.failing_since = self.last_error = None
                self.disk_full = False
            for marked, after_commit, on_unsavable in callbacks:
                refused = [pool.pool_id for pool in marked if pool.pool_id in dropped] if dropped else ()
                if not refused and after_commit is not None:
                    after_commit()
                for pool_id in refused if on_unsavable is not None else ():
                    on_unsavable(pool_id, dropped[pool_id])
            for pool_id, waiter in waiters:
                if pool_id in dropped:
                    waiter.set_exception(Unsavable(dropped[pool_id]))
                else:
                    waiter.set(True)

    def _save(self, pools, jobs, workers):
        """Save the batch; if one record is refused, save the rest and return the refused pool ids."""
        try:
            self.store.save(list(pools.values()), list(jobs.values()),
                            [record for record in workers.values() if record is not None],
                            [name for name, record in workers.items() if record is None])
            return {}
        except self.data_errors:
            pass
        dropped = {}
        jobs_by_pool = {}
        for job in jobs.values():
            jobs_by_pool.setdefault(job.pool_id, []).append(job)
        for pool_id, pool in pools.items():
            try:
                self.store.save([pool], jobs_by_pool.get(pool_id, []), [])
            except self.data_errors as exc:
                log.error("pool %s cannot be stored and is dropped: %s: %s", pool_id, type(exc).__name__, exc)
                dropped[pool_id] = exc
        for name, record in workers.items():
            try:
                self.store.save([], [], [record] if record is not None else [], [name] if record is None else [])
            except self.data_errors as exc:
                log.error("worker record %r cannot be stored and is dropped: %s", name, exc)
        return dropped

    def _failed(self, exc, count):
        text = "%s: %s" % (type(exc).__name__, exc)
        if (self.failing_since is None or text != self.last_error) and self.store.damage is None:
            # One line per kind of failure, not one a second.
            log.error("could not save %d record(s) to the store (%s); retrying every %ss", count, text,
                      RETRY_SECONDS)
        if self.failing_since is None:
            self.failing_since = self._clock() if self._clock else 0
        self.last_error = text
        self.disk_full = _is_disk_full(exc)

    def _requeue(self, pools, jobs, workers, callbacks, waiters):
        for pool_id, pool in pools.items():
            if pool_id not in self._forgotten:
                self._pools.setdefault(pool_id, pool)
        for job_id, job in jobs.items():
            if job.pool_id not in self._forgotten:
                self._jobs.setdefault(job_id, job)
        for name, record in workers.items():
            self._workers.setdefault(name, record)
        self._after_commit[:0] = callbacks
        self._waiters[:0] = waiters
        self._wake.set()

    def flush(self, timeout):
        """Wait up to `timeout` seconds for everything queued to be saved; False if it was not."""
        try:
            self.committed().get(timeout=timeout)
            return True
        except (gevent.Timeout, Unsavable):
            return False

    def stop(self):
        self._loop.kill()


def _is_disk_full(exc):
    """SQLite says SQLITE_FULL as 'database or disk is full'; the OS says ENOSPC or EDQUOT."""
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        (isinstance(exc, sqlite3.OperationalError) and "is full" in str(exc))
