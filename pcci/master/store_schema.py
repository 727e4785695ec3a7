"""The pool store's schema, versioned, for both backends.

Each backend has a list of migrations, numbered from 1. A store records the version
it is at (table ``pcci_schema``); at open it applies the migrations above that
version in order, each logged, and refuses to open a database whose version is newer
than this release knows (an older master must not write a newer schema's tables).
A new release that changes the tables appends a migration to both lists.
"""

import collections
import logging

from ..errors import CannotStart

log = logging.getLogger(__name__)

Migration = collections.namedtuple("Migration", "version what statements")

SQLITE = [
    Migration(1, "pools, jobs and workers", [
        """CREATE TABLE IF NOT EXISTS pools (
            id TEXT PRIMARY KEY, cmd TEXT NOT NULL, created INTEGER NOT NULL, end_time INTEGER, timeout REAL,
            env TEXT, cwd TEXT, status TEXT NOT NULL, submitted_by TEXT, submitted_from TEXT, killed_by TEXT,
            target TEXT, rollout TEXT, run_as TEXT, copy TEXT)""",
        "CREATE INDEX IF NOT EXISTS pools_by_status ON pools (status, id)",
        "CREATE INDEX IF NOT EXISTS pools_by_end ON pools (end_time)",
        """CREATE TABLE IF NOT EXISTS jobs (
            pool_id TEXT NOT NULL, position INTEGER NOT NULL, worker TEXT NOT NULL, state TEXT NOT NULL,
            exit_code INTEGER, signal TEXT, start_time INTEGER, end_time INTEGER,
            stdout TEXT NOT NULL DEFAULT '', stderr TEXT NOT NULL DEFAULT '',
            stdout_truncated INTEGER NOT NULL DEFAULT 0, stderr_truncated INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (pool_id, worker)) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS workers (
            name TEXT PRIMARY KEY, address TEXT, first_seen INTEGER, last_seen INTEGER, stats TEXT, labels TEXT)""",
    ]),
    # Which worker process synced last: its jobs sent since, and not named in its next sync,
    # never arrived and are sent again (pool_core.on_sync).
    Migration(2, "the worker process that synced last", ["ALTER TABLE workers ADD COLUMN instance TEXT"]),
    # A pool's jobs' standard input (base64): a job that starts later (a batch, a queue) gets it too.
    Migration(3, "the jobs' standard input", ["ALTER TABLE pools ADD COLUMN stdin TEXT"]),
    # Pools' notifications, each attempt recorded: the outbox the master sends from (notify_outbox).
    Migration(5, "the notification outbox", [
        """CREATE TABLE IF NOT EXISTS notify_outbox (
            id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, position INTEGER NOT NULL, url TEXT NOT NULL,
            notify_on TEXT NOT NULL, secret TEXT, state TEXT NOT NULL, body BLOB, attempts TEXT NOT NULL,
            next_at INTEGER, created INTEGER NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS notify_by_pool ON notify_outbox (pool_id)",
        "CREATE INDEX IF NOT EXISTS notify_by_state ON notify_outbox (state, next_at)",
    ]),
    # Schedules, and the due time a pool was made for: unique, so a due time makes one pool.
    Migration(6, "schedules", [
        "ALTER TABLE pools ADD COLUMN scheduled_by TEXT",
        "ALTER TABLE pools ADD COLUMN scheduled_due INTEGER",
        "CREATE UNIQUE INDEX IF NOT EXISTS pools_by_schedule ON pools (scheduled_by, scheduled_due)",
        """CREATE TABLE IF NOT EXISTS schedules (
            name TEXT PRIMARY KEY, body TEXT NOT NULL, since INTEGER NOT NULL, settled INTEGER NOT NULL,
            changed INTEGER NOT NULL, changed_by TEXT)""",
    ]),
    # Whose pool each notification is for: the outbox's cap is per API token (notify_outbox.add).
    Migration(7, "the notification outbox's owners", [
        "ALTER TABLE notify_outbox ADD COLUMN owner TEXT",
        "CREATE INDEX IF NOT EXISTS notify_by_owner ON notify_outbox (owner, state)",
    ]),
    # Large job outputs in pieces (output_rows): the job's own column holds "".
    Migration(8, "large job outputs in pieces", [
        """CREATE TABLE IF NOT EXISTS job_output (
            pool_id TEXT NOT NULL, position INTEGER NOT NULL, stream INTEGER NOT NULL, seq INTEGER NOT NULL,
            data BLOB NOT NULL, PRIMARY KEY (pool_id, position, stream, seq))""",
    ]),
]

# Columns the releases before versioned schemas added to a file at open, with their
# types: a file from then may lack some (migration 1 on SQLite adds them).
SQLITE_UNVERSIONED_COLUMNS = (
    ("pools", "submitted_by", "TEXT"), ("pools", "submitted_from", "TEXT"), ("pools", "killed_by", "TEXT"),
    ("pools", "target", "TEXT"), ("pools", "rollout", "TEXT"), ("pools", "run_as", "TEXT"),
    ("pools", "copy", "TEXT"), ("workers", "labels", "TEXT"))

# InnoDB, as Galera needs (and a primary key on every table, which it needs too).
# utf8mb4_bin: names and output compare byte for byte, as in SQLite.
_INNODB = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

MARIADB = [
    Migration(1, "pools, jobs, workers and the master lease", [
        """CREATE TABLE IF NOT EXISTS pools (
            id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
            cmd LONGTEXT NOT NULL, created BIGINT NOT NULL, end_time BIGINT NULL, timeout DOUBLE NULL,
            env LONGTEXT NULL, cwd TEXT NULL, status VARCHAR(16) NOT NULL, submitted_by VARCHAR(255) NULL,
            submitted_from VARCHAR(64) NULL, killed_by VARCHAR(255) NULL, target LONGTEXT NULL,
            rollout TEXT NULL, run_as VARCHAR(64) NULL, copy LONGTEXT NULL,
            KEY pools_by_status (status, id), KEY pools_by_end (end_time)) """ + _INNODB,
        """CREATE TABLE IF NOT EXISTS jobs (
            pool_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, position INT NOT NULL,
            worker VARCHAR(255) NOT NULL, state VARCHAR(16) NOT NULL, exit_code INT NULL, `signal` VARCHAR(32) NULL,
            start_time BIGINT NULL, end_time BIGINT NULL, stdout LONGTEXT NOT NULL, stderr LONGTEXT NOT NULL,
            stdout_truncated TINYINT NOT NULL DEFAULT 0, stderr_truncated TINYINT NOT NULL DEFAULT 0,
            PRIMARY KEY (pool_id, worker)) """ + _INNODB,
        """CREATE TABLE IF NOT EXISTS workers (
            name VARCHAR(255) NOT NULL PRIMARY KEY, address VARCHAR(64) NULL, first_seen BIGINT NULL,
            last_seen BIGINT NULL, stats TEXT NULL, labels TEXT NULL) """ + _INNODB,
        # One row: which master is active (holder), since which election (epoch), until when
        # (expires, the database's UTC clock), and where clients and workers find it.
        # ``writes`` is bumped by every write of the active master: it puts this row in
        # each write's write set, so Galera's certification orders writes against elections.
        """CREATE TABLE IF NOT EXISTS pcci_lease (
            id TINYINT NOT NULL PRIMARY KEY, holder VARCHAR(255) NOT NULL, epoch BIGINT NOT NULL,
            expires DATETIME(6) NOT NULL, api_url VARCHAR(1024) NULL, worker_address VARCHAR(300) NULL,
            writes BIGINT NOT NULL DEFAULT 0) """ + _INNODB,
        "INSERT IGNORE INTO pcci_lease (id, holder, epoch, expires) VALUES (1, '', 0, '1970-01-01 00:00:01')",
    ]),
    Migration(2, "the worker process that synced last", [
        "ALTER TABLE workers ADD COLUMN IF NOT EXISTS instance VARCHAR(64) CHARACTER SET ascii NULL"]),
    Migration(3, "the jobs' standard input", [
        "ALTER TABLE pools ADD COLUMN IF NOT EXISTS stdin LONGTEXT CHARACTER SET ascii NULL"]),
    Migration(5, "the notification outbox", [
        """CREATE TABLE IF NOT EXISTS notify_outbox (
            id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
            pool_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, position INT NOT NULL,
            url VARCHAR(2048) NOT NULL, notify_on VARCHAR(64) NOT NULL, secret VARCHAR(256) NULL,
            state VARCHAR(16) NOT NULL, body MEDIUMBLOB NULL, attempts TEXT NOT NULL, next_at BIGINT NULL,
            created BIGINT NOT NULL, KEY notify_by_pool (pool_id), KEY notify_by_state (state, next_at)) """ + _INNODB,
    ]),
    Migration(6, "schedules", [
        "ALTER TABLE pools ADD COLUMN IF NOT EXISTS scheduled_by VARCHAR(64) CHARACTER SET ascii NULL",
        "ALTER TABLE pools ADD COLUMN IF NOT EXISTS scheduled_due BIGINT NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS pools_by_schedule ON pools (scheduled_by, scheduled_due)",
        """CREATE TABLE IF NOT EXISTS schedules (
            name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, body LONGTEXT NOT NULL,
            since BIGINT NOT NULL, settled BIGINT NOT NULL, changed BIGINT NOT NULL,
            changed_by VARCHAR(255) NULL) """ + _INNODB,
    ]),
    Migration(7, "the notification outbox's owners", [
        "ALTER TABLE notify_outbox ADD COLUMN IF NOT EXISTS owner VARCHAR(255) NULL",
        "CREATE INDEX IF NOT EXISTS notify_by_owner ON notify_outbox (owner, state)",
    ]),
    Migration(8, "large job outputs in pieces", [
        """CREATE TABLE IF NOT EXISTS job_output (
            pool_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, position INT NOT NULL,
            stream TINYINT NOT NULL, seq INT NOT NULL, data MEDIUMBLOB NOT NULL,
            PRIMARY KEY (pool_id, position, stream, seq)) """ + _INNODB,
    ]),
]

VERSION_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS pcci_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
    "mariadb": "CREATE TABLE IF NOT EXISTS pcci_schema (id TINYINT NOT NULL PRIMARY KEY, version INT NOT NULL) "
               + _INNODB,
}


class SchemaTooNew(Exception):
    pass


def pending(migrations, version, where):
    """The migrations to apply to a store at ``version``, in order."""
    newest = migrations[-1].version
    if version > newest:
        raise SchemaTooNew("%s has schema version %d; this release of pcci-master knows up to %d: upgrade "
                           "pcci-master (a newer master wrote it)" % (where, version, newest))
    return [migration for migration in migrations if migration.version > version]


def migrate(migrations, version, where, apply):
    """Bring a store at ``version`` up to date: ``apply(migration)`` for each one pending, in
    order, each logged; CannotStart for a store newer than this release."""
    try:
        steps = pending(migrations, version, where)
    except SchemaTooNew as exc:
        raise CannotStart(str(exc))
    for step in steps:
        apply(step)
        log.info("pool store %s: schema version %d (%s)", where, step.version, step.what)


def newest(migrations):
    return migrations[-1].version
