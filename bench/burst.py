"""Burst: clients submitting `echo` pools to two local workers as fast as the master takes
them; reports the sustained accepted pools/s, the 429s (back-pressure), how long the
backlog took to drain, and whether anything was lost.

    python3 bench/burst.py [--clients 4] [--seconds 10]

Real master and worker processes on loopback (tests/conftest.py), the same driver as
tests/test_burst.py (tests/burst.py).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from burst import run_burst  # noqa: E402
from conftest import Cluster  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="info", heartbeat_timeout="15s")
            for name in ("pi1", "pi2"):
                cluster.start_worker(name, log_level="info", heartbeat_interval="5s", link_timeout="20s")
            connected = {w["name"]: w["connectedSince"] for w in cluster.api("GET", "/workers")[1]["workers"]}
            r = run_burst(cluster, ["pi1", "pi2"], clients=args.clients, seconds=args.seconds)
            workers = cluster.api("GET", "/workers")[1]["workers"]
            dropped = [w["name"] for w in workers if w["connectedSince"] != connected.get(w["name"])]
            print("clients %d for %.0f s: %d pools accepted (%.0f/s sustained), %d jobs, %d answered 429 busy, "
                  "drained %.1f s after the start; %d jobs wrong, %d other errors, workers dropped: %s"
                  % (args.clients, args.seconds, r["accepted"], r["accepted_per_second"], r["jobs"], r["busy"],
                     r["settled_seconds"], len(r["wrong"]), len(r["errors"]), dropped or "none"))
            for wrong in r["wrong"][:5]:
                print("  wrong:", wrong)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
