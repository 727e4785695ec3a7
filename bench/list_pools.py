"""GET /pools over large pools: the master's peak RSS while 4 clients list at once.

Run by hand: python3 bench/list_pools.py [POOLS] [JOBS]   (default: 300 pools of 2,000 jobs).
A real master on loopback; each pool names JOBS workers the master has never seen (40
characters each: their jobs end ``unknown_worker`` at once, so the pools are large and
cheap to make). Four threads then each GET /pools?limit=1000, following ``next`` to the
end. Prints the largest body, the pages, and the master's RSS before and at its peak.
"""

import os
import sys
import tempfile
import threading
import time
import urllib.request

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import Cluster  # noqa: E402

import json  # noqa: E402


def list_all(port, results):
    before, pages, largest = None, 0, 0
    while True:
        path = "/pools?limit=1000" + ("&before=" + before if before else "")
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=300) as response:
            body = response.read()
        pages, largest = pages + 1, max(largest, len(body))
        before = json.loads(body)["next"]
        if before is None:
            break
    results.append((pages, largest))


def main(pool_count, jobs):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="warning", max_pool_jobs=jobs)
            names = ["never-seen-node-%024d" % n for n in range(jobs)]
            for _ in range(pool_count):
                status, submitted = cluster.api("POST", "/job", {"cmd": "true", "workers": names})
                assert status == 202, submitted
            time.sleep(3)                   # saved
            master = psutil.Process(cluster.master.process.pid)
            before, peak, results = master.memory_info().rss, 0, []
            threads = [threading.Thread(target=list_all, args=(cluster.api_port, results)) for _ in range(4)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                peak = max(peak, master.memory_info().rss)
                time.sleep(0.05)
            took = time.monotonic() - started
            print("%d pools of %d jobs, 4 clients listing all at once: master RSS before %.0f MB, peak %.0f MB; "
                  "largest body %.1f MB, %d pages each, %.1f s" % (pool_count, jobs, before / 1e6, peak / 1e6,
                                                                     max(r[1] for r in results) / 1e6,
                                                                     results[0][0], took))
        finally:
            cluster.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [300, 2000][len(args):]))
