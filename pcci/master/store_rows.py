"""The pool store's rows, pure: pools, jobs and worker records to the tuples both
backends write, and the tuples they read back to pools. No database here."""

import json

from ..model import CopySpec, Job, Pool, Rollout, WorkerRecord
from .output_rows import inline

# Backticks quote `signal`, a reserved word in MariaDB; SQLite accepts them too.
JOB_COLUMNS = ("worker, state, exit_code, `signal`, start_time, end_time, "
               "stdout, stderr, stdout_truncated, stderr_truncated")
JOB_SUMMARY_COLUMNS = "worker, state, exit_code, `signal`, start_time, end_time"
POOL_COLUMNS = ("id, cmd, created, end_time, timeout, env, cwd, submitted_by, submitted_from, killed_by, target, "
                "rollout, run_as, copy, stdin, scheduled_by, scheduled_due")
POOL_WRITE_COLUMNS = ("id, cmd, created, end_time, timeout, env, cwd, status, submitted_by, submitted_from, "
                      "killed_by, target, rollout, run_as, copy, stdin, scheduled_by, scheduled_due")
POOL_WRITE_COUNT = POOL_WRITE_COLUMNS.count(",") + 1
WORKER_COLUMNS = "name, address, first_seen, last_seen, stats, labels, instance"
# What a save changes of a pool already stored (the rest is fixed at submit).
POOL_CHANGING_COLUMNS = ("end_time", "status", "killed_by")
JOB_CHANGING_COLUMNS = ("state", "exit_code", "`signal`", "start_time", "end_time", "stdout", "stderr",
                        "stdout_truncated", "stderr_truncated")
WORKER_CHANGING_COLUMNS = ("address", "last_seen", "stats", "labels", "instance")


def page_query(status, before, limit, mark, columns=POOL_COLUMNS):
    """GET /pools' page as (SELECT statement, arguments), newest first; ``mark`` is the
    backend's placeholder (``?`` or ``%s``)."""
    clauses, args = [], []
    if status:
        clauses.append("status = " + mark)
        args.append(status)
    if before:
        clauses.append("id < " + mark)
        args.append(before)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return "SELECT %s FROM pools %s ORDER BY id DESC LIMIT %s" % (columns, where, mark), args + [limit]


def _json_or_none(value):
    return json.dumps(value) if value is not None else None


def pool_row(pool):
    return (pool.pool_id, pool.cmd, pool.created, pool.end_time, pool.timeout, _json_or_none(pool.env), pool.cwd,
            pool.status.value, pool.submitted_by, pool.submitted_from, pool.killed_by, _json_or_none(pool.target),
            _json_or_none(pool.rollout.to_json() if pool.rollout is not None else None), pool.user,
            _json_or_none(pool.copy.to_json() if pool.copy is not None else None), pool.stdin, pool.scheduled_by,
            pool.scheduled_due)


def job_row(job):
    return (job.pool_id, job.position, job.worker, job.state.value, job.exit_code, job.signal, job.start_time,
            job.end_time, inline(job.stdout), inline(job.stderr), int(job.stdout_truncated), int(job.stderr_truncated))


def worker_row(record):
    return (record.name, record.address, record.first_seen, record.last_seen, _json_or_none(record.stats),
            json.dumps(record.labels or {}), record.instance)


def worker_from_row(row):
    return WorkerRecord(row[0], row[1], row[2], row[3], json.loads(row[4]) if row[4] else None,
                        json.loads(row[5]) if row[5] else {}, row[6])


def pool_from_rows(row, job_rows):
    """A Pool from its row (POOL_COLUMNS) and its jobs' rows (JOB_COLUMNS, or JOB_SUMMARY_COLUMNS
    for a listing without output), in position order."""
    (pool_id, cmd, created, end_time, timeout, env, cwd, submitted_by, submitted_from, killed_by, target, rollout,
     user, copy, stdin, scheduled_by, scheduled_due) = row
    jobs = {}
    for position, columns in enumerate(job_rows):
        job = Job(pool_id, *columns[:6], position=position)
        if len(columns) > 6:
            job.stdout, job.stderr = columns[6], columns[7]
            job.stdout_truncated, job.stderr_truncated = bool(columns[8]), bool(columns[9])
        jobs[job.worker] = job
    return Pool(pool_id, cmd, created, jobs, timeout=timeout,
                env=json.loads(env) if env else None, cwd=cwd, end_time=end_time, submitted_by=submitted_by,
                submitted_from=submitted_from, killed_by=killed_by, target=json.loads(target) if target else None,
                rollout=Rollout.from_json(json.loads(rollout)) if rollout else None, user=user,
                copy=CopySpec.from_json(json.loads(copy)) if copy else None, stdin=stdin,
                scheduled_by=scheduled_by, scheduled_due=scheduled_due)
