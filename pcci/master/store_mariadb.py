"""Pool history in MariaDB (InnoDB), alone or on a Galera cluster: the same calls as the
SQLite ``Store``, for several masters sharing one database.

A commit returns once InnoDB (and, on Galera, the cluster's certification) has
accepted the transaction, so an acknowledged result is as durable as the database is
configured to make it (docs/high-availability.md). Every write of the active master
carries its lease epoch (``fence``): the transaction first bumps the lease row if, and
only if, it still names this master and this epoch, and is refused otherwise. A
master that lost its lease -- paused, cut off, outvoted -- can therefore not write,
however late its transaction arrives (``Fenced``).

Like ``Store`` it is blocking and runs on ``ThreadedStore``'s one thread.
"""

import logging
import re

from ..errors import CannotStart, StoreUnavailable
from . import output_rows, pool_pages, schedule_rows, store_schema
from .mariadb_link import Connector, Session, Unreachable
from .pool_store import PoolStore
from .store_rows import (JOB_CHANGING_COLUMNS, JOB_COLUMNS, POOL_CHANGING_COLUMNS, POOL_COLUMNS, POOL_WRITE_COLUMNS,
                         POOL_WRITE_COUNT,
                         WORKER_CHANGING_COLUMNS, WORKER_COLUMNS, job_row, pool_from_rows, pool_row, worker_from_row,
                         worker_row)

log = logging.getLogger(__name__)

DISK_BYTES = ("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
              "WHERE table_schema = DATABASE()")
FENCE = "UPDATE pcci_lease SET writes = writes + 1 WHERE id = 1 AND holder = %s AND epoch = %s"


class Fenced(StoreUnavailable):
    """This master does not hold the lease (or no longer): it may not write."""


def _updates(columns):
    return ", ".join("%s = VALUES(%s)" % (column, column) for column in columns)


def _marks(count):
    return ", ".join(["%s"] * count)


SAVE_POOLS = "INSERT INTO pools (%s) VALUES (%s) ON DUPLICATE KEY UPDATE %s" % (
    POOL_WRITE_COLUMNS, _marks(POOL_WRITE_COUNT), _updates(POOL_CHANGING_COLUMNS))
SAVE_JOBS = "INSERT INTO jobs (pool_id, position, %s) VALUES (%s) ON DUPLICATE KEY UPDATE %s" % (
    JOB_COLUMNS, _marks(12), _updates(JOB_CHANGING_COLUMNS))
SAVE_WORKERS = "INSERT INTO workers (%s) VALUES (%s) ON DUPLICATE KEY UPDATE %s" % (
    WORKER_COLUMNS, _marks(7), _updates(WORKER_CHANGING_COLUMNS))


class MariaDbStore(PoolStore):
    # The server finds and reports damage itself (its own log, its own recovery): ``damage`` stays None.

    def __init__(self, target, password, tls_ca=None, connector=None, spill_dir=None):
        self.spill_dir = spill_dir      # where large outputs read back are held (output_rows)
        self.connector = connector or Connector(target, password, tls_ca)
        self.path = "mariadb://%s@%s" % (target.user, ",".join("%s:%d" % host for host in target.hosts))
        self.session = Session(self.connector)
        self.fence = None           # (holder, epoch) while this master holds the lease
        self.data_errors = self.connector.data_errors()

    # -- the connection ----------------------------------------------------------------
    def open(self):
        try:
            self._run(self._migrate)
            self._run(self._read_server_settings)
        except StoreUnavailable as exc:
            raise CannotStart("the pool store %s: %s" % (self.path, exc.message))

    def close(self):
        self.session.close()

    def _run(self, work):
        """work(cursor) in one transaction, committed; a lost connection moves to the next host
        once, then raises StoreUnavailable (the persister retries; the API answers 503)."""
        for attempt in (1, 2):
            try:
                return self.session.transaction(work)
            except Unreachable as exc:
                raise StoreUnavailable("the pool store is unreachable: %s" % exc)
            except Exception as exc:
                if self.connector.is_connection_lost(exc):
                    if attempt == 1:
                        continue        # every write is an upsert or a delete: trying it again is safe
                    raise StoreUnavailable("the pool store %s stopped answering: %s" % (self.connector.where, exc))
                if self.connector.is_conflict(exc):
                    raise StoreUnavailable("the pool store refused a transaction that conflicted with another "
                                           "(%s); it is tried again" % exc)
                raise

    def _migrate(self, cursor):
        cursor.execute(store_schema.VERSION_TABLE["mariadb"])
        cursor.execute("SELECT version FROM pcci_schema WHERE id = 1")
        row = cursor.fetchone()

        def apply(step):
            # DDL commits by itself in MariaDB; every statement is idempotent (IF NOT EXISTS,
            # INSERT IGNORE), so two masters starting at once both end at this version.
            for statement in step.statements:
                cursor.execute(statement)
            cursor.execute("INSERT INTO pcci_schema (id, version) VALUES (1, %s) "
                           "ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))", (step.version,))
        store_schema.migrate(store_schema.MARIADB, row[0] if row else 0, self.path, apply)

    def _read_server_settings(self, cursor):
        """What the master checks its own settings against at start (service.open_store)."""
        cursor.execute("SELECT @@max_allowed_packet")
        self.max_packet = cursor.fetchone()[0]
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_provider_options'")
        row = cursor.fetchone()
        self.galera_suspect_seconds = suspect_timeout(row[1]) if row and row[1] else None

    def schema_version(self):
        return self._run(lambda cursor: _one(cursor, "SELECT version FROM pcci_schema WHERE id = 1"))

    # -- writes ------------------------------------------------------------------------
    def save(self, pools, jobs, workers=(), forget_workers=()):
        def work(cursor):
            self._check_fence(cursor)
            self._refuse_second_pool_for_a_due_time(cursor, pools)
            if pools:
                cursor.executemany(SAVE_POOLS, [pool_row(p) for p in pools])
            if jobs:
                cursor.executemany(SAVE_JOBS, [job_row(j) for j in jobs])
                output_rows.write(cursor.execute, output_rows.spilled_jobs(jobs), "%s")
            if workers:
                cursor.executemany(SAVE_WORKERS, [worker_row(w) for w in workers])
            if forget_workers:
                cursor.executemany("DELETE FROM workers WHERE name = %s", [(name,) for name in forget_workers])
        self._run(work)

    def _refuse_second_pool_for_a_due_time(self, cursor, pools):
        # ON DUPLICATE KEY UPDATE would take the unique (scheduled_by, scheduled_due) for
        # the pool's id, and update the pool already made for that due time.
        for pool in pools:
            if pool.scheduled_by is not None:
                other = schedule_rows.duplicate_due(_executor(cursor), "%s", pool)
                if other is not None:
                    raise self.connector.pymysql.err.IntegrityError(
                        1062, "schedule %s's due time %d has its pool already (%s)"
                        % (pool.scheduled_by, pool.scheduled_due, other))

    # -- schedules (schedule_rows) ------------------------------------------------------
    def schedules(self):
        return self._run(lambda cursor: schedule_rows.load(_executor(cursor), "%s"))

    def put_schedule(self, row, limit=None):
        def work(cursor):
            self._check_fence(cursor)
            if limit is not None:
                schedule_rows.check_room(_executor(cursor), "%s", row.name, limit)
            schedule_rows.put(_executor(cursor), "%s", row, schedule_rows.MARIADB_UPSERT)
        self._run(work)

    def delete_schedule(self, name):
        def work(cursor):
            self._check_fence(cursor)
            schedule_rows.delete(_executor(cursor), "%s", name)
        self._run(work)

    def settle_schedules(self, settled):
        def work(cursor):
            self._check_fence(cursor)
            schedule_rows.settle(_executor(cursor), "%s", settled)
        self._run(work)

    def scheduled_pools(self, name, limit):
        return self._run(lambda cursor: schedule_rows.pool_ids(_executor(cursor), "%s", name, limit))

    def fence_writes(self, holder, epoch):
        """From now on every write needs this lease (``holder``, ``epoch``) to be the current one."""
        self.fence = (holder, epoch)

    def _check_fence(self, cursor):
        if self.fence is None:
            raise Fenced("this master is not the active one: it holds no lease, so it writes nothing")
        cursor.execute(FENCE, self.fence)
        if cursor.rowcount != 1:
            raise Fenced("this master's lease (epoch %d) has passed to another master: its writes are refused"
                         % self.fence[1])

    def purge(self, ended_before_ms, max_pools, batch=500):
        def work(cursor):
            cursor.execute("SELECT id FROM pools WHERE status = 'done' AND end_time < %s LIMIT %s",
                           (ended_before_ms, batch))
            ids = [row[0] for row in cursor.fetchall()]
            if not ids and max_pools is not None:
                excess = _one(cursor, "SELECT COUNT(*) FROM pools") - max_pools
                if excess > 0:
                    cursor.execute("SELECT id FROM pools WHERE status = 'done' ORDER BY id LIMIT %s",
                                   (min(excess, batch),))
                    ids = [row[0] for row in cursor.fetchall()]
            if ids:
                self._check_fence(cursor)
                cursor.execute("DELETE FROM jobs WHERE pool_id IN (%s)" % _marks(len(ids)), ids)
                output_rows.purge(cursor.execute, ids, "%s")
                cursor.execute("DELETE FROM pools WHERE id IN (%s)" % _marks(len(ids)), ids)
            return len(ids)
        return self._run(work)

    def outbox(self, work, *args, write=True):
        """work(query, *args) on the notification outbox (notify_outbox), in one transaction;
        fenced like every write unless ``write`` is False (a standby reads it too)."""
        def run(cursor):
            if write:
                self._check_fence(cursor)

            def query(sql, params=()):
                cursor.execute(sql.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
            return work(query, *args)
        return self._run(run)

    # -- reads -------------------------------------------------------------------------
    def get_pool(self, pool_id):
        return self._run(lambda cursor: _read_pool(cursor, pool_id, self.spill_dir))

    def unfinished_pools(self):
        def work(cursor):
            cursor.execute("SELECT id FROM pools WHERE status = 'running'")
            return [_read_pool(cursor, row[0], self.spill_dir) for row in cursor.fetchall()]
        return self._run(work)

    def list_pools(self, status=None, before=None, limit=50):
        return self.pool_page(status, before, limit)[0]

    def pool_page(self, status=None, before=None, limit=50, max_bytes=pool_pages.LIST_BYTES):
        """(pools, cut): one page of GET /pools, bounded by count and bytes (pool_pages)."""
        def work(cursor):
            def execute(sql, args):
                cursor.execute(sql, args)
                return cursor.fetchall()
            rows, jobs_by_pool, cut = pool_pages.load_page(execute, "%s", status, before, limit, max_bytes)
            return [pool_from_rows(row, jobs_by_pool[row[0]]) for row in rows], cut
        return self._run(work)

    def workers(self):
        def work(cursor):
            cursor.execute("SELECT %s FROM workers ORDER BY name" % WORKER_COLUMNS)
            return [worker_from_row(row) for row in cursor.fetchall()]
        return self._run(work)

    def count_pools(self):
        return self._run(lambda cursor: _one(cursor, "SELECT COUNT(*) FROM pools"))

    def disk_bytes(self):
        """The data and indexes of this database's tables, as the server reports them
        (InnoDB's figures are estimates, refreshed as its statistics are)."""
        return int(self._run(lambda cursor: _one(cursor, DISK_BYTES)))


def suspect_timeout(provider_options):
    """Galera's evs.suspect_timeout in seconds, from wsrep_provider_options ('...;
    evs.suspect_timeout = PT5S; ...'), or None: how long commits stall when a node dies."""
    for option in provider_options.split(";"):
        name, _, value = option.partition("=")
        if name.strip() == "evs.suspect_timeout":
            match = re.fullmatch(r"PT(?:([0-9]+(?:\.[0-9]+)?)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?", value.strip())
            if match and (match.group(1) or match.group(2)):
                return float(match.group(1) or 0) * 60 + float(match.group(2) or 0)
    return None


def _executor(cursor):
    """execute(sql, args) -> rows, on this cursor."""
    def execute(sql, args):
        cursor.execute(sql, args)
        return cursor.fetchall()
    return execute


def _one(cursor, statement, args=None):
    cursor.execute(statement, args)
    return cursor.fetchone()[0]


def _read_pool(cursor, pool_id, spill_dir):
    cursor.execute("SELECT %s FROM pools WHERE id = %%s" % POOL_COLUMNS, (pool_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute("SELECT %s FROM jobs WHERE pool_id = %%s ORDER BY position" % JOB_COLUMNS, (pool_id,))
    return output_rows.attach(pool_from_rows(row, cursor.fetchall()), _executor(cursor), spill_dir, "%s")
