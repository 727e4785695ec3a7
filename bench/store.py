"""Store: API response times with 100,000 retained pools, and the cost of a retention purge.

Fills a master's SQLite file with N finished pools (2 jobs each, through the real Store),
starts the master on it, times GET /pools (a page), GET /pool/<id> (one pool) and a
second page, then times purging them all with the store's batched purge.

    python3 bench/store.py [N]       (default 100000)
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import Cluster  # noqa: E402
from pcci.master.pool_ids import PoolIdMaker  # noqa: E402
from pcci.master.store import Store  # noqa: E402
from pcci.model import Job, Pool  # noqa: E402
from pcci.states import JobState  # noqa: E402


def fill(path, count):
    store = Store(path)
    store.open()
    maker = PoolIdMaker()
    start_ms = int(time.time() * 1000) - count * 10
    batch_pools, batch_jobs, ids = [], [], []
    for n in range(count):
        created = start_ms + n * 10
        pool_id = maker.make(created)
        jobs = {w: Job(pool_id, w, state=JobState.SUCCEEDED, exit_code=0, start_time=created, end_time=created + 5,
                       stdout="output of %s\n" % w, position=i) for i, w in enumerate(("pi1", "pi2"))}
        pool = Pool(pool_id, "uptime", created, jobs, end_time=created + 5)
        batch_pools.append(pool)
        batch_jobs += jobs.values()
        ids.append(pool_id)
        if len(batch_pools) == 5000:
            store.save(batch_pools, batch_jobs)
            batch_pools, batch_jobs = [], []
    if batch_pools:
        store.save(batch_pools, batch_jobs)
    store.close()
    return ids


def timed(cluster, path, repeat=50):
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        status, _ = cluster.api("GET", path)
        samples.append(time.perf_counter() - started)
        assert status == 200
    return statistics.median(samples) * 1000


def main(count):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        state = os.path.join(base, "master-state")
        os.makedirs(state)
        started = time.perf_counter()
        ids = fill(os.path.join(state, "pcci.sqlite3"), count)
        print("filled %d pools in %.1fs; file %.1f MB" % (count, time.perf_counter() - started,
                                                          os.path.getsize(os.path.join(state, "pcci.sqlite3")) / 2**20))
        try:
            cluster.start_master(log_level="warning")
            print("GET /pools?limit=50          median %.2f ms" % timed(cluster, "/pools?limit=50"))
            print("GET /pools?limit=50&before=  median %.2f ms" % timed(cluster, "/pools?limit=50&before=%s" % ids[count // 2]))
            print("GET /pools?status=running    median %.2f ms" % timed(cluster, "/pools?status=running"))
            print("GET /pool/<id>               median %.2f ms" % timed(cluster, "/pool/%s" % ids[count // 3]))
        finally:
            cluster.stop()
        store = Store(os.path.join(state, "pcci.sqlite3"))
        store.open()
        started = time.perf_counter()
        removed, batches, longest = 0, 0, 0.0
        while True:
            t0 = time.perf_counter()
            n = store.purge(ended_before_ms=int(time.time() * 1000) + 1, max_pools=None)
            longest = max(longest, time.perf_counter() - t0)
            if not n:
                break
            removed += n
            batches += 1
        print("purged %d pools in %.1fs, %d batches, longest batch %.1f ms (the API is served between batches)"
              % (removed, time.perf_counter() - started, batches, longest * 1000))
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100000)
