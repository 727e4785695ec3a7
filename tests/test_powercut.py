"""Power cuts: the master's or a worker's state directory on the power-cut filesystem
(tests/powercut.py), the process killed and everything not fsync'd dropped, at random
points while results flow.

Seeded and bounded: PCCI_POWERCUT_SEED replays a run, PCCI_POWERCUT_CUTS sets how many
cuts (6 by default; raise it for a longer run by hand).
"""

import os
import random
import sqlite3
import time

from conftest import wait_until
from pcci.worker.spool import unacknowledged

CUTS = int(os.environ.get("PCCI_POWERCUT_CUTS", "6"))


def seed():
    return int(os.environ.get("PCCI_POWERCUT_SEED") or random.SystemRandom().randrange(10 ** 6))


def test_master_power_cuts_lose_no_acknowledged_result_and_no_accepted_pool(cluster, powercut, tmp_path):
    rng_seed = seed()
    rng = random.Random(rng_seed)
    state_dir = os.path.join(powercut.path, "master-state")
    cluster.start_master(state_dir=state_dir)
    for name in ("pi1", "pi2"):
        cluster.start_worker(name, reconnect_max="0.3s")
    expected = {}       # every pool that was answered 202 -> what each of its jobs prints
    started = tmp_path / "started"
    for cut in range(CUTS):
        for n in range(rng.randint(3, 8)):
            text = "seed%d-cut%d-%d" % (rng_seed, cut, n)
            command = 'echo "$PCCI_JOB_ID" >> %s; sleep %.2f; echo %s' % (started, rng.uniform(0, 0.4), text)
            status, body = cluster.api("POST", "/job", {"cmd": command, "workers": ["pi1", "pi2"]})
            assert status == 202, body
            expected[body["id"]] = text + "\n"
        # Every job has reached its worker (a run frame still on its way dies with the master,
        # and its job would rightly end lost); some results are acknowledged, some not yet.
        wait_until(lambda: started.exists() and len(started.read_text().split()) == 2 * len(expected),
                   what="every job started")
        time.sleep(rng.uniform(0, 0.5))
        cluster.master.kill()               # the power goes: the process dies ...
        powercut.cut()                      # ... and the disk keeps only what was fsync'd
        cluster.start_master(state_dir=state_dir)
        cluster.wait_online("pi1", "pi2")
    wrong = []
    for pool_id, text in expected.items():
        status, pool = cluster.api("GET", "/pool/%s?wait=30" % pool_id)
        if status != 200:
            wrong.append((pool_id, "pool missing: %s" % pool))
            continue
        for name, job in pool["jobs"].items():
            if (job["state"], job["stdout"]) != ("succeeded", text):
                wrong.append((pool_id, name, job["state"], job["stdout"], job["stderr"][:200]))
    cluster.master.stop()                   # it holds its database exclusively while it runs
    db = sqlite3.connect(os.path.join(state_dir, "pcci.sqlite3"))
    rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT pool_id || '/' || worker) FROM jobs").fetchone()
    db.close()
    print("%d power cuts, %d pools, %d jobs, %d lost or wrong, %d duplicated (seed %d)"
          % (CUTS, len(expected), 2 * len(expected), len(wrong), rows - distinct, rng_seed))
    assert wrong == [], "seed %d: %r" % (rng_seed, wrong[:5])
    assert rows == distinct == 2 * len(expected)


def test_a_result_spooled_before_a_worker_power_cut_is_delivered_after_it_restarts(cluster, powercut):
    cluster.start_master()
    state_dir = os.path.join(powercut.path, "worker-pi1")
    worker = cluster.start_worker("pi1", state_dir=state_dir)
    status, submitted = cluster.api("POST", "/job", {"cmd": "sleep 2; echo survived", "workers": ["pi1"]})
    cluster.wait_running(submitted["id"], "pi1")
    cluster.master.kill()                   # the result cannot be sent: it waits in the spool
    results = os.path.join(state_dir, "results")
    wait_until(lambda: unacknowledged(results), what="the result spooled")
    # The record shows once written; the fdatasync that makes it durable follows within
    # microseconds. A kill inside that window is not what this test is about.
    time.sleep(0.5)
    worker.kill()
    powercut.cut()
    assert unacknowledged(results), "the spooled result did not survive"
    cluster.start_master()
    worker.start()
    job = cluster.api("GET", "/pool/%s?wait=20" % submitted["id"])[1]["jobs"]["pi1"]
    assert (job["state"], job["stdout"]) == ("succeeded", "survived\n")
