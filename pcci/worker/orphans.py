"""Jobs left running by a worker that died, found and killed when the worker starts again.

Each job runs in its own session, so it outlives a worker that is SIGKILLed or
OOM-killed. Every job's environment carries ``PCCI_JOB_ID`` and ``PCCI_WORKER`` (the
worker's state dir, which tells two workers on one host apart). A starting worker
kills its job cgroups left from before (``pcci.worker.cgroups``) and every process
carrying its own ``PCCI_WORKER`` -- daemons that left the job's session too; the
master, told at sync that those jobs are not running, marks them lost -- which is
then true. Nothing is written per job. A process that cleared its environment and
left the job's session is beyond reach without a job cgroup.
"""

import logging
import os
import signal
import time

log = logging.getLogger(__name__)

WORKER_VARIABLE = "PCCI_WORKER"
JOB_VARIABLE = "PCCI_JOB_ID"


def job_environment(job_id, worker_id):
    return {JOB_VARIABLE: job_id, WORKER_VARIABLE: worker_id}


def process_ids():
    """Every process's id, from /proc (a worker does without psutil: stats.py)."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_environment(pid):
    """A process's environment at its start, from /proc/PID/environ; OSError if it is gone
    or not ours to read."""
    with open("/proc/%d/environ" % pid, "rb") as handle:
        entries = handle.read().split(b"\0")
    return dict(entry.decode("utf-8", "replace").split("=", 1) for entry in entries if b"=" in entry)


def find_left_over(worker_id, candidates=None):
    """{pid: job id} of every process carrying this worker's marker -- session leaders,
    their children, and daemons that left the job's session alike."""
    found = {}
    for pid in candidates if candidates is not None else process_ids():
        if pid == os.getpid():
            continue
        try:
            environment = process_environment(pid)
        except (OSError, ValueError):
            continue
        if environment.get(WORKER_VARIABLE) == worker_id and JOB_VARIABLE in environment:
            found[pid] = environment[JOB_VARIABLE]
    return found


def find_job_processes(worker_id, job_id):
    """The pids carrying one job's marker (a kill without a job cgroup reaches these too)."""
    return [pid for pid, marked in find_left_over(worker_id).items() if marked == job_id]


def reap(worker_id, cgroups=None, kill=os.kill):
    """Kill what a previous run of this worker left behind: its job cgroups, and every
    process carrying its marker. Returns the job ids found."""
    found = set()
    for name, path in (cgroups.left_over().items() if cgroups is not None else ()):
        cgroups.signal(path, signal.SIGKILL)
        log.warning("killed the processes of job cgroup %s, left by a previous worker", name)
        found.add(name)
    for pid, job_id in find_left_over(worker_id).items():
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        log.warning("killed process %d of job %s, left running by a previous worker", pid, job_id)
        found.add(job_id)
    if cgroups is not None:
        for path in cgroups.left_over().values():
            _remove_when_empty(cgroups, path)
    return found


def _remove_when_empty(cgroups, path, attempts=50):
    """A killed cgroup empties within milliseconds; bounded, then left for the next start."""
    for _ in range(attempts):
        if cgroups.remove(path):
            return True
        time.sleep(0.02)
    log.warning("job cgroup %s is still busy; left for the next start", path)
    return False
