"""Schedules' SQL, for both backends: each function takes ``execute(sql, args)`` (returning
the rows) and the backend's placeholder (``?`` or ``%s``), as ``pool_pages`` does.

A schedule's row holds its body (schedule_spec), ``since`` (due times up to it do not
count: before it was made, changed or enabled again) and ``settled`` (the latest due time
dealt with: fired, skipped or refused). A due time that made a pool is in the pool's own
row (``scheduled_by``, ``scheduled_due``, unique together), written in the pool's
transaction: that row, not ``settled``, is what stops a second pool for the same due
time; ``settled`` is written after it, and covers due times that made no pool and pools
that retention has purged since.
"""

import json
from typing import NamedTuple, Optional

from . import schedule_spec

COLUMNS = "name, body, since, settled, changed, changed_by"


class ScheduleRow(NamedTuple):
    name: str
    body: dict
    since: int                      # wall ms
    settled: int                    # wall ms: the latest due time dealt with (0: none)
    changed: int
    changed_by: Optional[str]
    latest_pool_due: Optional[int] = None      # the latest due time with a pool in the store

    @property
    def base(self):
        """Due times up to this one are settled."""
        return max(self.since, self.settled, self.latest_pool_due or 0)


def load(execute, mark):
    rows = execute("SELECT %s, (SELECT MAX(scheduled_due) FROM pools WHERE scheduled_by = schedules.name) "
                   "FROM schedules ORDER BY name" % COLUMNS, [])
    return [ScheduleRow(row[0], json.loads(row[1]), *row[2:]) for row in rows]


def count(execute, mark):
    return execute("SELECT COUNT(*) FROM schedules", [])[0][0]


def put(execute, mark, row: ScheduleRow, upsert):
    """Insert or replace; ``upsert`` is the backend's "on conflict, update these" clause."""
    marks = ", ".join([mark] * 6)
    execute("INSERT INTO schedules (%s) VALUES (%s) %s" % (COLUMNS, marks, upsert),
            [row.name, json.dumps(row.body), row.since, row.settled, row.changed, row.changed_by])


def check_room(execute, mark, name, limit):
    """TooManySchedules when ``name`` is new and ``limit`` schedules exist (checked in the insert's transaction)."""
    if execute("SELECT COUNT(*) FROM schedules WHERE name = %s" % mark, [name])[0][0]:
        return
    schedule_spec.check_limit(count(execute, mark), limit)


def delete(execute, mark, name):
    execute("DELETE FROM schedules WHERE name = %s" % mark, [name])


def settle(execute, mark, settled):
    """``settled``: {name: due}; each schedule's settled due time moved up to it, never back."""
    for name, due in sorted(settled.items()):
        execute("UPDATE schedules SET settled = %s WHERE name = %s AND settled < %s" % (mark, mark, mark),
                [due, name, due])


def pool_ids(execute, mark, name, limit):
    """The latest pools of a schedule: (due, pool id), newest first."""
    return [tuple(row) for row in execute(
        "SELECT scheduled_due, id FROM pools WHERE scheduled_by = %s ORDER BY scheduled_due DESC LIMIT %s"
        % (mark, mark), [name, limit])]


def duplicate_due(execute, mark, pool):
    """Another pool's id for this scheduled pool's due time, or None (MariaDB's upsert would
    update that pool instead of refusing this one: checked before it)."""
    rows = execute("SELECT id FROM pools WHERE scheduled_by = %s AND scheduled_due = %s AND id <> %s"
                   % (mark, mark, mark), [pool.scheduled_by, pool.scheduled_due, pool.pool_id])
    return rows[0][0] if rows else None


SQLITE_UPSERT = "ON CONFLICT (name) DO UPDATE SET body = excluded.body, since = excluded.since, " \
                "changed = excluded.changed, changed_by = excluded.changed_by"
MARIADB_UPSERT = "ON DUPLICATE KEY UPDATE body = VALUES(body), since = VALUES(since), changed = VALUES(changed), " \
                 "changed_by = VALUES(changed_by)"
