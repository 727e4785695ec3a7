"""Finding and killing the jobs a crashed worker left behind, with real processes."""

import os
import subprocess

from pcci.worker import orphans


def spawn(environment):
    return subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True,
                            env=dict(os.environ, **environment))


def test_only_this_workers_left_over_jobs_are_killed():
    mine = spawn(orphans.job_environment("pool/pi1", "/var/lib/pcci-worker-a"))
    other = spawn(orphans.job_environment("pool/pi2", "/var/lib/pcci-worker-b"))
    try:
        assert orphans.reap("/var/lib/pcci-worker-a") == {"pool/pi1"}
        mine.wait(5)
        assert mine.returncode == -9 and other.poll() is None
    finally:
        for process in (mine, other):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_jobs_see_their_id_and_worker_in_the_environment():
    assert orphans.job_environment("p/n", "/state") == {"PCCI_JOB_ID": "p/n", "PCCI_WORKER": "/state"}
