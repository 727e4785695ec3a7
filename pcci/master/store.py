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
"""

import json
import sqlite3

from gevent.threadpool import ThreadPool

from ..errors import CannotStart
from ..model import Job, Pool, Rollout, WorkerRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS pools (
    id TEXT PRIMARY KEY,
    cmd TEXT NOT NULL,
    created INTEGER NOT NULL,
    end_time INTEGER,
    timeout REAL,
    env TEXT,
    cwd TEXT,
    status TEXT NOT NULL,
    submitted_by TEXT,
    submitted_from TEXT,
    killed_by TEXT,
    target TEXT,
    rollout TEXT,
    run_as TEXT,
    copy TEXT
);
CREATE INDEX IF NOT EXISTS pools_by_status ON pools (status, id);
CREATE INDEX IF NOT EXISTS pools_by_end ON pools (end_time);
CREATE TABLE IF NOT EXISTS jobs (
    pool_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    worker TEXT NOT NULL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    signal TEXT,
    start_time INTEGER,
    end_time INTEGER,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    stdout_truncated INTEGER NOT NULL DEFAULT 0,
    stderr_truncated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, worker)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY,
    address TEXT,
    first_seen INTEGER,
    last_seen INTEGER,
    stats TEXT,
    labels TEXT
);
"""

JOB_COLUMNS = ("worker, state, exit_code, signal, start_time, end_time, "
               "stdout, stderr, stdout_truncated, stderr_truncated")
JOB_SUMMARY_COLUMNS = "worker, state, exit_code, signal, start_time, end_time"
POOL_COLUMNS = ("id, cmd, created, end_time, timeout, env, cwd, submitted_by, submitted_from, killed_by, target, "
                "rollout, run_as, copy")
# Columns added since the first release, with their types: added to an older file at open.
ADDED_COLUMNS = (("pools", "submitted_by", "TEXT"), ("pools", "submitted_from", "TEXT"), ("pools", "killed_by", "TEXT"),
                 ("pools", "target", "TEXT"), ("pools", "rollout", "TEXT"), ("pools", "run_as", "TEXT"), ("pools", "copy", "TEXT"),
                 ("workers", "labels", "TEXT"))


class StoreDamaged(CannotStart):
    def __init__(self, path, error):
        super().__init__("the pool store %s is damaged (%s); the master will not start over an empty history "
                         "by itself: stop it, move the file aside (mv %s %s.damaged, with its -wal and -shm "
                         "files), and start it again; docs/configuration.md says more"
                         % (path, error, path, path))
        self.path = path


class Store:
    def __init__(self, path):
        self.path = path
        self.db = None

    def open(self):
        """Open (or create) the file; StoreDamaged if it is not a usable SQLite database."""
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            self._add_missing_columns()
            # Reading every table once finds a damaged file now, not at the first request.
            for table in ("pools", "jobs", "workers"):
                self.db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreDamaged(self.path, exc)

    def _add_missing_columns(self):
        """Upgrade a file written by an older release: new columns start out NULL."""
        for table, name, kind in ADDED_COLUMNS:
            present = {row[1] for row in self.db.execute("PRAGMA table_info(%s)" % table)}
            if name not in present:
                self.db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, name, kind))

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    # -- writes ------------------------------------------------------------------------
    def save(self, pools, jobs, workers=(), forget_workers=()):
        """Upsert pools, jobs and worker records, and delete the records of forgotten
        workers (``forget_workers``, names), in one transaction."""
        with _transaction(self.db):
            self.db.executemany(
                "INSERT INTO pools (id, cmd, created, end_time, timeout, env, cwd, status, submitted_by, "
                "submitted_from, killed_by, target, rollout, run_as, copy) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET "
                "end_time = excluded.end_time, status = excluded.status, killed_by = excluded.killed_by",
                [(p.pool_id, p.cmd, p.created, p.end_time, p.timeout,
                  json.dumps(p.env) if p.env is not None else None, p.cwd, p.status.value, p.submitted_by,
                  p.submitted_from, p.killed_by, json.dumps(p.target) if p.target is not None else None,
                  json.dumps(p.rollout.to_json()) if p.rollout is not None else None, p.user,
                  json.dumps(p.copy) if p.copy is not None else None)
                 for p in pools])
            self.db.executemany(
                "INSERT OR REPLACE INTO jobs (pool_id, position, %s) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" % JOB_COLUMNS,
                [(j.pool_id, j.position, j.worker, j.state.value, j.exit_code, j.signal, j.start_time, j.end_time,
                  j.stdout, j.stderr, int(j.stdout_truncated), int(j.stderr_truncated))
                 for j in jobs])
            self.db.executemany(
                "INSERT INTO workers (name, address, first_seen, last_seen, stats, labels) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET address = excluded.address, "
                "last_seen = excluded.last_seen, stats = excluded.stats, labels = excluded.labels",
                [(w.name, w.address, w.first_seen, w.last_seen, json.dumps(w.stats) if w.stats is not None else None,
                  json.dumps(w.labels or {})) for w in workers])
            self.db.executemany("DELETE FROM workers WHERE name = ?", [(name,) for name in forget_workers])

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
                self.db.execute("DELETE FROM pools WHERE id IN (%s)" % marks, ids)
        return len(ids)

    # -- reads -------------------------------------------------------------------------
    def get_pool(self, pool_id):
        row = self.db.execute("SELECT %s FROM pools WHERE id = ?" % POOL_COLUMNS, (pool_id,)).fetchone()
        if row is None:
            return None
        jobs = self.db.execute("SELECT %s FROM jobs WHERE pool_id = ? ORDER BY position" % JOB_COLUMNS,
                               (pool_id,)).fetchall()
        return _pool_from_rows(row, jobs)

    def unfinished_pools(self):
        ids = [r[0] for r in self.db.execute("SELECT id FROM pools WHERE status = 'running'")]
        return [self.get_pool(pool_id) for pool_id in ids]

    def list_pools(self, status=None, before=None, limit=50):
        """Newest first, without output; `before` is the id that ends the previous page."""
        clauses, args = [], []
        if status:
            clauses.append("status = ?")
            args.append(status)
        if before:
            clauses.append("id < ?")
            args.append(before)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.execute("SELECT %s FROM pools %s ORDER BY id DESC LIMIT ?" % (POOL_COLUMNS, where),
                               args + [limit]).fetchall()
        if not rows:
            return []
        # One query for the whole page's jobs, not one per pool.
        jobs_by_pool = {row[0]: [] for row in rows}
        for job_row in self.db.execute(
                "SELECT pool_id, %s FROM jobs WHERE pool_id IN (%s) ORDER BY pool_id, position"
                % (JOB_SUMMARY_COLUMNS, ",".join("?" * len(rows))), list(jobs_by_pool)):
            jobs_by_pool[job_row[0]].append(job_row[1:])
        return [_pool_from_rows(row, jobs_by_pool[row[0]]) for row in rows]

    def workers(self):
        rows = self.db.execute("SELECT name, address, first_seen, last_seen, stats, labels FROM workers ORDER BY name")
        return [WorkerRecord(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None,
                             json.loads(r[5]) if r[5] else {}) for r in rows]

    def count_pools(self):
        return self.db.execute("SELECT COUNT(*) FROM pools").fetchone()[0]


class _transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _pool_from_rows(row, job_rows):
    (pool_id, cmd, created, end_time, timeout, env, cwd, submitted_by, submitted_from, killed_by, target, rollout,
     user, copy) = row
    jobs = {}
    for position, job_row in enumerate(job_rows):
        job = Job(pool_id, *job_row[:6], position=position)
        if len(job_row) > 6:
            job.stdout, job.stderr = job_row[6], job_row[7]
            job.stdout_truncated, job.stderr_truncated = bool(job_row[8]), bool(job_row[9])
        jobs[job.worker] = job
    return Pool(pool_id, cmd, created, jobs, timeout=timeout,
                env=json.loads(env) if env else None, cwd=cwd, end_time=end_time, submitted_by=submitted_by,
                submitted_from=submitted_from, killed_by=killed_by, target=json.loads(target) if target else None,
                rollout=Rollout.from_json(json.loads(rollout)) if rollout else None, user=user,
                copy=json.loads(copy) if copy else None)


class ThreadedStore:
    """The same calls as Store, each run on the store's own thread while the caller's greenlet waits."""

    def __init__(self, store):
        self._store = store
        self._thread = ThreadPool(1)

    def __getattr__(self, name):
        method = getattr(self._store, name)

        def call(*args, **kwargs):
            return self._thread.apply(method, args, kwargs)
        return call

    def open(self):
        # At start, before anything is served: in the caller's thread, so a damaged file
        # raises StoreDamaged here without the thread pool printing its traceback.
        self._store.open()

    def shutdown(self):
        self._thread.apply(self._store.close)
        self._thread.kill()
