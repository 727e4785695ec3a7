"""Jobs left running by a worker that died, found and killed when the worker starts again.

Each job runs in its own session, so it outlives a worker that is SIGKILLed or
OOM-killed. Every job's environment carries ``PCCI_JOB_ID`` and ``PCCI_WORKER`` (the
worker's state dir, which tells two workers on one host apart). A starting worker
looks for session leaders carrying its own ``PCCI_WORKER`` and kills their process
groups; the master, told at sync that those jobs are not running, marks them lost --
which is then true. Nothing is written per job. (Under systemd the unit's cgroup would
kill them too.)
"""

import logging
import os
import signal

import psutil

log = logging.getLogger(__name__)

WORKER_VARIABLE = "PCCI_WORKER"
JOB_VARIABLE = "PCCI_JOB_ID"


def job_environment(job_id, worker_id):
    return {JOB_VARIABLE: job_id, WORKER_VARIABLE: worker_id}


def find_left_over(worker_id, candidates=None):
    """{pid: job id} of session leaders started by a worker with this id."""
    found = {}
    for pid in candidates if candidates is not None else psutil.pids():
        try:
            if pid == os.getpid() or os.getsid(pid) != pid:
                continue
            environment = psutil.Process(pid).environ()
        except (OSError, psutil.Error):
            continue
        if environment.get(WORKER_VARIABLE) == worker_id and JOB_VARIABLE in environment:
            found[pid] = environment[JOB_VARIABLE]
    return found


def reap(worker_id, kill_group=os.killpg):
    """Kill the process groups of jobs a previous run of this worker left behind."""
    killed = []
    for pid, job_id in find_left_over(worker_id).items():
        try:
            kill_group(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        log.warning("killed job %s (process group %d), left running by a previous worker", job_id, pid)
        killed.append(job_id)
    return killed
