"""The JSON the REST API shows for pools, jobs and workers (pure).

Keys keep the original PCCI's camelCase; states are the lowercase words of
``pcci.states``. The OpenAPI document (``openapi.py``) describes exactly these.
"""

from ..clock import iso_time


def job_json(job, live=None):
    """A job; ``live`` is (stdout, stderr) received so far while it runs."""
    data = job_state_json(job)
    data["stdout"], data["stderr"] = live if live is not None else (job.stdout, job.stderr)
    return data


def job_state_json(job):
    """A job without its output: the ``job`` events of an event stream."""
    return {
        "worker": job.worker,
        "state": job.state.value,
        "exitCode": job.exit_code,
        "signal": job.signal,
        "startTime": iso_time(job.start_time),
        "endTime": iso_time(job.end_time),
        "stdoutTruncated": job.stdout_truncated,
        "stderrTruncated": job.stderr_truncated,
    }


def pool_json(pool, with_output=True, env_values=True, live=None):
    """A whole pool; without output (for lists) its workers are named instead of shown.
    Without ``env_values`` (a read-only token) the env's names are shown, its values null.
    ``live`` maps a running job's worker to its (stdout, stderr) so far."""
    data = {
        "id": pool.pool_id,
        "cmd": pool.cmd,
        "status": pool.status.value,
        "exitCode": pool.exit_code,
        "createdTime": iso_time(pool.created),
        "startTime": iso_time(pool.start_time),
        "endTime": iso_time(pool.end_time),
        "timeout": pool.timeout,
        "cwd": pool.cwd,
        "states": pool.state_counts(),
        "submittedBy": pool.submitted_by,
        "submittedFrom": pool.submitted_from,
        "killedBy": pool.killed_by,
        "target": pool.target,
        "rollout": rollout_json(pool.rollout),
        "user": pool.user,
        "copy": None if pool.copy is None else {"dest": pool.copy.dest, "mode": pool.copy.mode,
                                                "owner": pool.copy.owner,
                                                "bytes": pool.copy.size if pool.copy.size >= 0 else None,
                                                "sha256": pool.copy.sha256 or None, "unpack": pool.copy.unpack,
                                                "fetch": pool.copy.fetch, "relay": pool.copy.relay},
        "scheduledBy": pool.scheduled_by,
        "scheduledFor": iso_time(pool.scheduled_due),
    }
    if with_output:
        data["env"] = pool.env if env_values or pool.env is None else dict.fromkeys(pool.env)
        live = live or {}
        data["jobs"] = {name: job_json(job, live.get(name) if not job.ended else None)
                        for name, job in pool.jobs.items()}
    else:
        data["workers"] = list(pool.jobs)
    return data


def rollout_json(rollout):
    if rollout is None:
        return None
    return {"batch": rollout.batch, "maxFailures": rollout.max_failures, "queueUntil": iso_time(rollout.queue_until)}


def submitted_json(pool):
    """The 202 answer to POST /job."""
    return {"id": pool.pool_id, "url": pool_url(pool.pool_id), "status": pool.status.value,
            "jobs": {name: job.state.value for name, job in pool.jobs.items()}}


def pool_url(pool_id):
    return "/pool/%s" % pool_id


def worker_json(info):
    return {
        "name": info.name,
        "online": info.online,
        "address": info.address,
        "connectedSince": iso_time(info.connected_since),
        "lastHeartbeat": iso_time(info.last_heartbeat),
        "lastSeen": iso_time(info.last_seen),
        "firstSeen": iso_time(info.first_seen),
        "stats": info.stats,
        "labels": info.labels,
        "users": info.users,
        "runningJobs": list(info.running),
        "queuedJobs": list(info.queued),
    }
