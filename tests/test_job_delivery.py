"""Jobs whose run frame never reached the worker: sent again, run once, never `lost`.

Real master and worker processes on loopback, with a relay between them that can hold
frames and then drop them (tests/linkproxy.py): what a master SIGKILLed under load, or
a link that died, leaves behind. Each job appends a line to a file, so counting the
lines counts the runs.
"""

import os
import sqlite3

from conftest import wait_until
from linkproxy import LinkProxy
from pcci.worker.spool import unacknowledged


def runs(path):
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return sorted(handle.read().split())


def submit(cluster, cmd, worker="pi1"):
    status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": [worker]})
    assert status == 202, submitted
    return submitted["id"]


def finished(cluster, pool_id, wait=30):
    status, pool = cluster.api("GET", "/pool/%s?wait=%d" % (pool_id, wait))
    assert status == 200 and pool["status"] == "done", pool
    return pool["jobs"]["pi1"]


def spooled(cluster, name):
    return unacknowledged(os.path.join(cluster.workers[name].settings["state_dir"], "results"))


def test_jobs_sent_just_before_a_master_sigkill_that_never_arrived_run_once_after_restart(cluster, tmp_path):
    ran = str(tmp_path / "ran")
    cluster.start_master()
    proxy = LinkProxy(cluster.worker_port)
    try:
        # max_jobs 1: the second pool waits in the worker's own queue (it arrived, not started).
        cluster.start_worker("pi1", master_port=proxy.port, max_jobs=1)
        first = cluster.run("echo first >> %s" % ran, ["pi1"])["id"]
        running = submit(cluster, "sleep 2; echo running >> %s" % ran)
        cluster.wait_running(running, "pi1")
        waiting = submit(cluster, "echo waiting >> %s" % ran)
        wait_until(lambda: any("%s/pi1" % waiting in w["queuedJobs"]
                               for w in cluster.api("GET", "/workers")[1]["workers"]), what="queued on the worker")
        proxy.hold()
        # Stored and sent by the master, held in the relay: they never reach the worker.
        never = [submit(cluster, "echo never%d >> %s" % (n, ran)) for n in range(3)]
        cluster.master.kill()
        proxy.cut()
        proxy.restore()
        wait_until(lambda: len(spooled(cluster, "pi1")) == 2, what="the arrived jobs ran and were spooled")
        assert runs(ran) == ["first", "running", "waiting"]
        cluster.start_master()
        jobs = {pool_id: finished(cluster, pool_id) for pool_id in [running, waiting] + never}
        assert {pool_id: job["state"] for pool_id, job in jobs.items()} == dict.fromkeys(jobs, "succeeded")
        assert runs(ran) == sorted(["first", "running", "waiting", "never0", "never1", "never2"])
        assert "sent again" in cluster.master.log()
        wait_until(lambda: not spooled(cluster, "pi1"), what="every result acknowledged")
        cluster.master.stop()               # it holds its database exclusively while it runs
        db = sqlite3.connect(os.path.join(cluster.master.settings["state_dir"], "pcci.sqlite3"))
        try:
            rows = db.execute("SELECT pool_id, state FROM jobs").fetchall()
        finally:
            db.close()
        assert sorted(rows) == sorted((pool_id, "succeeded") for pool_id in [first, running, waiting] + never)
    finally:
        proxy.close()


def test_a_job_sent_into_a_link_that_died_runs_once_when_the_worker_is_back(cluster, tmp_path):
    ran = str(tmp_path / "ran")
    cluster.start_master(heartbeat_timeout="20s")
    proxy = LinkProxy(cluster.worker_port)
    try:
        cluster.start_worker("pi1", master_port=proxy.port)
        proxy.hold()
        pool_id = submit(cluster, "echo once >> %s" % ran)
        proxy.cut()
        proxy.restore()
        job = finished(cluster, pool_id)
        assert (job["state"], runs(ran)) == ("succeeded", ["once"])
        # Cut again: the worker reconnects, nothing runs twice.
        proxy.cut()
        proxy.restore()
        cluster.wait_online("pi1")
        wait_until(lambda: not spooled(cluster, "pi1"), what="the result acknowledged")
        assert runs(ran) == ["once"]
    finally:
        proxy.close()


def test_a_job_that_may_have_run_on_a_worker_that_died_is_lost_not_run_again(cluster, tmp_path):
    ran = str(tmp_path / "ran")
    cluster.start_master()
    worker = cluster.start_worker("pi1")
    pool_id = submit(cluster, "echo started >> %s; sleep 30" % ran)
    cluster.wait_running(pool_id, "pi1")
    worker.kill()                          # SIGKILL: the restarted worker is another process
    cluster.start_worker("pi1")
    job = finished(cluster, pool_id)
    assert job["state"] == "lost"
    assert runs(ran) == ["started"]
