"""Pool history in SQLite: one file in the master's state dir.

``Store`` is plain blocking sqlite3. The master never calls it on the event loop:
``ThreadedStore`` runs every call on one dedicated thread (one connection, no lock
contention), so the hub keeps serving while SQLite reads, writes and purges.
WAL with synchronous=FULL: a commit returns only once the log is fsync'd, so what the
master acknowledges survives a power cut, not only a killed process. The persister
batches many results into one commit (group commit: one fsync for the batch). The
master holds the file exclusively (locking_mode=EXCLUSIVE): no other process can
open it while the master runs, and the WAL index lives in the master's memory instead
of a shared-memory file -- one master, one database; stop the master (or use the API)
to read it from elsewhere.

Damage found while running (bytes overwritten under the master, a failing disk) shows
as SQLITE_CORRUPT or SQLITE_NOTADB on whichever statement reads the damaged page. The
first such error, on a read or a write, marks the store ``damage``d, with one log line:
from then on it writes nothing (a write could spread the damage, and a result written
to a damaged file is not safe to acknowledge), so the persister saves and acknowledges
nothing, /health answers 503 saying why, and the workers keep their results spooled
until the file is replaced and the master restarted.
"""

import collections
import functools
import logging
import os
import sqlite3

from gevent.threadpool import ThreadPool

from ..clock import wall_ms
from ..durable_files import private_file
from ..errors import CannotStart, StoreUnavailable
from . import output_rows, pool_pages, schedule_rows, store_schema
from .pool_store import PoolStore
from .thread_calls import call_on
from .store_rows import (JOB_COLUMNS, POOL_CHANGING_COLUMNS, POOL_COLUMNS, POOL_WRITE_COLUMNS, POOL_WRITE_COUNT,
                         WORKER_CHANGING_COLUMNS, WORKER_COLUMNS, job_row, pool_from_rows, pool_row, worker_from_row,
                         worker_row)

log = logging.getLogger(__name__)


class StoreDamaged(CannotStart):
    def __init__(self, path, error):
        super().__init__("the pool store %s is damaged (%s); the master will not start over an empty history "
                         "by itself: stop it, move the file aside (mv %s %s.damaged, with its -wal and -shm "
                         "files), and start it again; docs/configuration.md says more"
                         % (path, error, path, path))
        self.path = path


# SQLite's primary result codes for a damaged file (extended codes keep them in the low byte).
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
DAMAGE_WORDS = ("malformed", "not a database")

# What a store found wrong with its file while running: why (with what to do), since when (wall ms).
Damage = collections.namedtuple("Damage", "message since")


def is_damage(exc):
    """Whether an sqlite3 error says the file is damaged (not busy, not full, not a bad value)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError)):
        return False
    code = getattr(exc, "sqlite_errorcode", None)      # Python 3.11+
    if code is not None:
        return code & 0xff in (SQLITE_CORRUPT, SQLITE_NOTADB)
    return any(word in str(exc) for word in DAMAGE_WORDS)


def _watching_for_damage(write):
    """Every runtime call: the first error that says the file is damaged marks the store
    damaged (and is answered as a 503); once damaged, writes are refused."""
    def wrap(method):
        @functools.wraps(method)
        def watched(self, *args, **kwargs):
            if write and self.damage is not None:
                raise StoreUnavailable(self.damage.message)
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                self._found_damage(exc)
                raise StoreUnavailable(self.damage.message) from exc
        return watched
    return wrap


class Store(PoolStore):
    def __init__(self, path):
        self.path = path
        self.spill_dir = os.path.dirname(os.path.abspath(path))    # large outputs read back (output_rows)
        self.db = None
        self.damage = None      # a Damage once a statement found the file damaged

    def _found_damage(self, exc):
        if self.damage is None:
            message = ("the pool store %s is damaged (%s); nothing more is saved or acknowledged (workers keep "
                       "their results): stop the master, move the file aside (mv %s %s.damaged, with its -wal "
                       "file) or restore a backup, and start it again" % (self.path, exc, self.path, self.path))
            self.damage = Damage(message, wall_ms())
            log.error("%s", message)

    def open(self):
        """Open (or create) the file; StoreDamaged if it is not a usable SQLite database."""
        # Before SQLite creates it under the umask: its -wal and -journal files copy its mode.
        try:
            private_file(self.path, ("-wal", "-shm", "-journal"))
        except OSError as exc:
            raise CannotStart("cannot create the pool store %s: %s" % (self.path, exc.strerror or exc))
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            # Reading every table once finds a damaged file now, not at the first request.
            for table in ("pools", "jobs", "workers"):
                self.db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreDamaged(self.path, exc)

    def _migrate(self):
        """Bring the file to this release's schema version (store_schema), one transaction each."""
        self.db.execute(store_schema.VERSION_TABLE["sqlite"])
        row = self.db.execute("SELECT version FROM pcci_schema WHERE id = 1").fetchone()
        store_schema.migrate(store_schema.SQLITE, row[0] if row else 0, self.path, self._apply)

    def _apply(self, step):
        with _transaction(self.db):
            for statement in step.statements:
                self.db.execute(statement)
            if step.version == 1:
                self._add_unversioned_columns()
            self.db.execute("INSERT OR REPLACE INTO pcci_schema (id, version) VALUES (1, ?)", (step.version,))

    def _add_unversioned_columns(self):
        """A file written before schemas had versions may lack columns added since: they start out NULL."""
        for table, name, kind in store_schema.SQLITE_UNVERSIONED_COLUMNS:
            present = {row[1] for row in self.db.execute("PRAGMA table_info(%s)" % table)}
            if name not in present:
                self.db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, name, kind))

    def schema_version(self):
        return self.db.execute("SELECT version FROM pcci_schema WHERE id = 1").fetchone()[0]

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    def fence_writes(self, holder, epoch):
        """Nothing to fence: a SQLite file has one master (it holds the file's lock)."""

    # -- writes ------------------------------------------------------------------------
    @_watching_for_damage(write=True)
    def save(self, pools, jobs, workers=(), forget_workers=()):
        """Upsert pools, jobs and worker records, and delete the records of forgotten
        workers (``forget_workers``, names), in one transaction."""
        with _transaction(self.db):
            self.db.executemany(
                "INSERT INTO pools (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s"
                % (POOL_WRITE_COLUMNS, ", ".join("?" * POOL_WRITE_COUNT), _excluded(POOL_CHANGING_COLUMNS)),
                [pool_row(p) for p in pools])
            self.db.executemany(
                "INSERT OR REPLACE INTO jobs (pool_id, position, %s) VALUES (%s)" % (JOB_COLUMNS, ", ".join("?" * 12)),
                [job_row(j) for j in jobs])
            output_rows.write(self.db.execute, output_rows.spilled_jobs(jobs))
            self.db.executemany(
                "INSERT INTO workers (%s) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET %s"
                % (WORKER_COLUMNS, _excluded(WORKER_CHANGING_COLUMNS)),
                [worker_row(w) for w in workers])
            self.db.executemany("DELETE FROM workers WHERE name = ?", [(name,) for name in forget_workers])

    @_watching_for_damage(write=True)
    def purge(self, ended_before_ms, max_pools, batch=500):
        """Delete up to `batch` pools that ended before the cutoff or exceed max_pools; return the count."""
        ids = [row[0] for row in self.db.execute(
            "SELECT id FROM pools WHERE status = 'done' AND end_time < ? LIMIT ?", (ended_before_ms, batch))]
        if not ids and max_pools is not None:
            excess = self.count_pools() - max_pools
            if excess > 0:
                ids = [row[0] for row in self.db.execute(
                    "SELECT id FROM pools WHERE status = 'done' ORDER BY id LIMIT ?", (min(excess, batch),))]
        if ids:
            marks = ",".join("?" * len(ids))
            with _transaction(self.db):
                self.db.execute("DELETE FROM jobs WHERE pool_id IN (%s)" % marks, ids)
                output_rows.purge(self.db.execute, ids)
                self.db.execute("DELETE FROM pools WHERE id IN (%s)" % marks, ids)
        return len(ids)

    @_watching_for_damage(write=True)
    def outbox(self, work, *args, write=True):
        """work(query, *args) on the notification outbox (notify_outbox), in one transaction."""
        with _transaction(self.db):
            return work(lambda sql, params=(): self.db.execute(sql, params).fetchall(), *args)

    # -- reads -------------------------------------------------------------------------
    @_watching_for_damage(write=False)
    def get_pool(self, pool_id):
        row = self.db.execute("SELECT %s FROM pools WHERE id = ?" % POOL_COLUMNS, (pool_id,)).fetchone()
        if row is None:
            return None
        jobs = self.db.execute("SELECT %s FROM jobs WHERE pool_id = ? ORDER BY position" % JOB_COLUMNS,
                               (pool_id,)).fetchall()
        return output_rows.attach(pool_from_rows(row, jobs), self._rows, self.spill_dir)

    @_watching_for_damage(write=False)
    def unfinished_pools(self):
        ids = [r[0] for r in self.db.execute("SELECT id FROM pools WHERE status = 'running'")]
        return [self.get_pool(pool_id) for pool_id in ids]

    @_watching_for_damage(write=False)
    def list_pools(self, status=None, before=None, limit=50):
        """Newest first, without output; `before` is the id that ends the previous page."""
        return self.pool_page(status, before, limit)[0]

    @_watching_for_damage(write=False)
    def pool_page(self, status=None, before=None, limit=50, max_bytes=pool_pages.LIST_BYTES):
        """(pools, cut): one page of GET /pools, bounded by count and bytes (pool_pages)."""
        rows, jobs_by_pool, cut = pool_pages.load_page(lambda sql, args: self.db.execute(sql, args).fetchall(),
                                                       "?", status, before, limit, max_bytes)
        return [pool_from_rows(row, jobs_by_pool[row[0]]) for row in rows], cut

    @_watching_for_damage(write=False)
    def workers(self):
        rows = self.db.execute("SELECT %s FROM workers ORDER BY name" % WORKER_COLUMNS)
        return [worker_from_row(row) for row in rows]

    @_watching_for_damage(write=False)
    def count_pools(self):
        return self.db.execute("SELECT COUNT(*) FROM pools").fetchone()[0]

    # -- schedules (schedule_rows) --------------------------------------------------------
    def _rows(self, sql, args):
        return self.db.execute(sql, args).fetchall()

    @_watching_for_damage(write=False)
    def schedules(self):
        return schedule_rows.load(self._rows, "?")

    @_watching_for_damage(write=True)
    def put_schedule(self, row, limit=None):
        """Insert or replace a schedule; with ``limit``, refuse (TooManySchedules) a new one past it."""
        with _transaction(self.db):
            if limit is not None:
                schedule_rows.check_room(self._rows, "?", row.name, limit)
            schedule_rows.put(self._rows, "?", row, schedule_rows.SQLITE_UPSERT)

    @_watching_for_damage(write=True)
    def delete_schedule(self, name):
        with _transaction(self.db):
            schedule_rows.delete(self._rows, "?", name)

    @_watching_for_damage(write=True)
    def settle_schedules(self, settled):
        with _transaction(self.db):
            schedule_rows.settle(self._rows, "?", settled)

    @_watching_for_damage(write=False)
    def scheduled_pools(self, name, limit):
        return schedule_rows.pool_ids(self._rows, "?", name, limit)

    def disk_bytes(self):
        """The file and its write-ahead log, as they take disk space."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(self.path + suffix).st_size
            except OSError:
                pass
        return total


class _transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _excluded(columns):
    return ", ".join("%s = excluded.%s" % (column, column) for column in columns)


class ThreadedStore:
    """A PoolStore's calls, each run on the store's own thread while the caller's greenlet waits."""

    def __init__(self, store: PoolStore):
        self._store = store
        self._thread = ThreadPool(1)

    def _call(self, method, *args, **kwargs):
        return call_on(self._thread, None, method, *args, **kwargs)

    @property
    def path(self):
        return self._store.path

    @property
    def data_errors(self):
        return self._store.data_errors

    @property
    def damage(self):
        return self._store.damage

    def open(self):
        # At start, before anything is served: in the caller's thread, so a damaged file
        # raises StoreDamaged here without the thread pool printing its traceback.
        self._store.open()

    def shutdown(self):
        self._thread.apply(self._store.close)
        self._thread.kill()

    def schema_version(self):
        return self._call(self._store.schema_version)

    def fence_writes(self, holder, epoch):
        return self._call(self._store.fence_writes, holder, epoch)

    def save(self, pools, jobs, workers=(), forget_workers=()):
        return self._call(self._store.save, pools, jobs, workers, forget_workers)

    def purge(self, ended_before_ms, max_pools, batch=500):
        return self._call(self._store.purge, ended_before_ms, max_pools, batch)

    def outbox(self, work, *args, write=True):
        return self._call(self._store.outbox, work, *args, write=write)

    def get_pool(self, pool_id):
        return self._call(self._store.get_pool, pool_id)

    def unfinished_pools(self):
        return self._call(self._store.unfinished_pools)

    def list_pools(self, status=None, before=None, limit=50):
        return self._call(self._store.list_pools, status, before, limit)

    def pool_page(self, status=None, before=None, limit=50, max_bytes=pool_pages.LIST_BYTES):
        return self._call(self._store.pool_page, status, before, limit, max_bytes)

    def workers(self):
        return self._call(self._store.workers)

    def count_pools(self):
        return self._call(self._store.count_pools)

    def disk_bytes(self):
        return self._call(self._store.disk_bytes)

    def schedules(self):
        return self._call(self._store.schedules)

    def put_schedule(self, row, limit=None):
        return self._call(self._store.put_schedule, row, limit)

    def delete_schedule(self, name):
        return self._call(self._store.delete_schedule, name)

    def settle_schedules(self, settled):
        return self._call(self._store.settle_schedules, settled)

    def scheduled_pools(self, name, limit):
        return self._call(self._store.scheduled_pools, name, limit)
