"""What the worker link's TLS costs: the same measurements with TLS (the default) and with
worker_tls / master_tls off, side by side in one run, alternating so that the machine's
noise falls on both.

    python3 bench/link_cost.py [--workers 10000] [--rounds 300]

Measures: one job's round trip on loopback (p50; target <= 5 ms), a real worker's idle
RSS (target <= 30 MB), and with simulated workers (bench/swarm.py) the sustained
results per second (target >= 5,000) and the time for all to reconnect after the master
restarts (target <= 15 s).
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
from conftest import Cluster  # noqa: E402
from fanout import rss_kb  # noqa: E402
from latency import percentile, round_trips  # noqa: E402
from scale import measure  # noqa: E402

MODES = (("tls", False), ("plaintext", True))


def small_cluster(plaintext, rounds):
    """(p50 round trip in ms, worker idle RSS in MB) on one real master and worker."""
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="warning", worker_tls=not plaintext)
            worker = cluster.start_worker("pi1", log_level="warning", master_tls=not plaintext)
            time.sleep(3)    # idle: registered, a few heartbeats sent
            rss_mb = rss_kb(worker.process.pid) / 1024
            samples = round_trips(cluster, rounds)
            return percentile(samples, 0.5) * 1000, rss_mb
        finally:
            cluster.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    results = {name: {"p50": [], "rss": []} for name, _ in MODES}
    for _ in range(2):
        for name, plaintext in MODES:
            p50, rss = small_cluster(plaintext, args.rounds)
            results[name]["p50"].append(p50)
            results[name]["rss"].append(rss)
    for name, plaintext in MODES:
        scale = measure(args.workers, plaintext)
        results[name].update(rate=scale["rate"], reconnect=scale["reconnect_s"], connect=scale["connect_s"])
    print("link       round trip p50 (ms)   worker idle RSS (MB)   results/s at %d   reconnect of %d (s)"
          % (args.workers, args.workers))
    for name, _ in MODES:
        r = results[name]
        print("%-9s  %8.2f / %-8.2f      %6.1f / %-6.1f        %12.0f        %10.2f" % (
            name, r["p50"][0], r["p50"][1], r["rss"][0], r["rss"][1], r["rate"], r["reconnect"]))


if __name__ == "__main__":
    main()
