"""What the master asks of a pool store: the one contract of SQLite (``store.Store``) and
MariaDB (``store_mariadb.MariaDbStore``).

A store is blocking: the master never calls it on the event loop but through
``store.ThreadedStore``, which runs each of these calls on the store's one thread. Writes
are upserts (saving a pool, job or worker again is safe), so a caller may retry one.
"""

import abc

from . import pool_pages


class PoolStore(abc.ABC):
    path = ""               # where the store is, for log lines and messages
    # Errors no retry cures, besides those the persister knows (SQLite's are among them).
    data_errors = ()
    # A store.Damage once the store found its data damaged; from then on it writes nothing.
    damage = None

    # -- the connection ----------------------------------------------------------------
    @abc.abstractmethod
    def open(self) -> None:
        """Connect, and bring the schema to this release's version; CannotStart if it cannot be used."""

    @abc.abstractmethod
    def close(self) -> None:
        """Let go of the file or connection."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version the data is at (store_schema)."""

    @abc.abstractmethod
    def fence_writes(self, holder: str, epoch: int) -> None:
        """From now on every write needs this lease to be the current one (several masters on
        one database); a store only one master can open ignores it."""

    # -- writes ------------------------------------------------------------------------
    @abc.abstractmethod
    def save(self, pools, jobs, workers=(), forget_workers=()) -> None:
        """Pools, jobs and workers upserted, forgotten workers deleted, in one transaction."""

    @abc.abstractmethod
    def purge(self, ended_before_ms: int, max_pools: int, batch: int = 500) -> int:
        """Ended pools older than ``ended_before_ms``, and the oldest ended ones beyond
        ``max_pools``, deleted in batches; how many were."""

    def outbox(self, work, *args, write=True):
        """work(query, *args) in one transaction on the notification outbox (``notify_outbox``):
        ``query(sql, params)`` with ``?`` marks returns the rows; a ``write`` needs the lease."""
        raise NotImplementedError

    # -- reads -------------------------------------------------------------------------
    @abc.abstractmethod
    def get_pool(self, pool_id: str):
        """The pool with its jobs, or None."""

    @abc.abstractmethod
    def unfinished_pools(self) -> list:
        """Pools that have not ended, with their jobs (what a starting master resumes)."""

    @abc.abstractmethod
    def list_pools(self, status=None, before=None, limit=50) -> list:
        """Pools newest first, without their output."""

    @abc.abstractmethod
    def pool_page(self, status=None, before=None, limit=50, max_bytes=pool_pages.LIST_BYTES):
        """(pools, cut): a page of GET /pools (``pool_pages``)."""

    @abc.abstractmethod
    def workers(self) -> list:
        """Every worker record (model.WorkerRecord)."""

    @abc.abstractmethod
    def count_pools(self) -> int:
        """How many pools are stored."""

    @abc.abstractmethod
    def disk_bytes(self) -> int:
        """The space the store's data takes (pcci_store_bytes)."""

    # -- schedules (schedule_rows: the rows and their meaning) -----------------------------
    @abc.abstractmethod
    def schedules(self) -> list:
        """Every schedule (schedule_rows.ScheduleRow), with its latest pool's due time."""

    @abc.abstractmethod
    def put_schedule(self, row, limit=None) -> None:
        """Insert or replace a schedule; with ``limit``, TooManySchedules for a new one past it."""

    @abc.abstractmethod
    def delete_schedule(self, name: str) -> None:
        """Delete a schedule (its pools stay, as history)."""

    @abc.abstractmethod
    def settle_schedules(self, settled: dict) -> None:
        """Record, for each schedule name, that its due times up to ``settled[name]`` are dealt with."""

    @abc.abstractmethod
    def scheduled_pools(self, name: str, limit: int) -> list:
        """(due, pool id) of the schedule's latest pools, newest first."""
