"""Full disks: the master's or a worker's state directory on a small tmpfs that a test fills.

The master: reads keep answering, POST /job is 503 `storage_full` instead of accepting
what it cannot store, results stay unacknowledged on the workers, and all resumes by
itself when space returns. The worker: a result it cannot spool is still delivered
(from memory, logged as not durable) and the worker keeps serving.
"""

import os

import pytest

from conftest import small_tmpfs, wait_until
from pcci.worker.spool import unacknowledged


@pytest.fixture
def small_disk(tmp_path):
    with small_tmpfs(tmp_path, "4m") as path:
        yield path


def fill(directory):
    """Fill the filesystem to the last byte; returns the filler's path."""
    filler = os.path.join(directory, "filler")
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:             # the last partial block too
                handle.write(b"\0")
        except OSError:
            pass
    return filler


def spooled(worker):
    return unacknowledged(os.path.join(worker.settings["state_dir"], "results"))


def test_the_masters_disk_full_refuses_new_pools_keeps_results_on_the_workers_and_resumes(cluster, small_disk):
    cluster.start_master(state_dir=os.path.join(small_disk, "master-state"))
    worker = cluster.start_worker("pi1")
    assert cluster.run("echo before", ["pi1"])["jobs"]["pi1"]["stdout"] == "before\n"
    status, running = cluster.api("POST", "/job", {"cmd": "sleep 1; echo during", "workers": ["pi1"]})
    filler = fill(small_disk)
    # The result arrives while the disk is full: it cannot be stored, so it is not acknowledged.
    wait_until(lambda: cluster.api("GET", "/health")[0] == 503, timeout=20, what="/health says the store fails")
    status, health = cluster.api("GET", "/health")
    assert health["status"] == "store_failing" and "full" in health["store"]["error"]
    status, body = cluster.api("POST", "/job", {"cmd": "echo refused", "workers": ["pi1"]})
    assert status == 503 and body["error"]["code"] == "storage_full"
    assert spooled(worker)                                  # the worker keeps it
    status, pool = cluster.api("GET", "/pool/%s" % running["id"])
    assert status == 200 and cluster.api("GET", "/pools")[0] == 200 and cluster.api("GET", "/workers")[0] == 200
    os.unlink(filler)                                       # space returns
    wait_until(lambda: cluster.api("GET", "/health")[0] == 200, timeout=20, what="the store saving again")
    job = cluster.api("GET", "/pool/%s?wait=20" % running["id"])[1]["jobs"]["pi1"]
    assert (job["state"], job["stdout"]) == ("succeeded", "during\n")
    wait_until(lambda: not spooled(worker), what="the result acknowledged")
    assert cluster.run("echo after", ["pi1"])["jobs"]["pi1"]["stdout"] == "after\n"
    assert cluster.master.process.poll() is None


def test_a_workers_disk_full_still_delivers_results_and_the_worker_keeps_serving(cluster, small_disk):
    cluster.start_master()
    worker = cluster.start_worker("pi1", state_dir=os.path.join(small_disk, "worker-state"))
    filler = fill(small_disk)
    for n in range(3):
        job = cluster.run("echo %d; echo err%d >&2" % (n, n), ["pi1"])["jobs"]["pi1"]
        assert (job["state"], job["stdout"], job["stderr"]) == ("succeeded", "%d\n" % n, "err%d\n" % n)
    assert "not durable" in worker.log()
    os.unlink(filler)
    assert cluster.run("echo spooled again", ["pi1"])["jobs"]["pi1"]["stdout"] == "spooled again\n"
    assert worker.process.poll() is None
