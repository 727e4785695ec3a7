"""Fan-out: time from POST /job to all results, for `true` on N local worker processes.

Run by hand: python3 bench/fanout.py [--peers] [N ...]   (default: 1 10 50 100).
Also prints idle RSS. With --peers, pdsh, clush and Ansible run `true` on N targets in
the same run (bench/peers.py) and their ratio to PCCI is printed.
Uses the test suite's Cluster helper: real master and worker processes on loopback.
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Cluster  # noqa: E402

ROUNDS = 20


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def measure(count):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="warning", heartbeat_timeout="30s")
            names = ["w%03d" % n for n in range(count)]
            for name in names:
                cluster.start_worker(name, wait=False, log_level="warning", heartbeat_interval="5s",
                                     link_timeout="20s")
            cluster.wait_online(*names, timeout=120)
            time.sleep(2)
            idle = (rss_kb(cluster.master.process.pid), rss_kb(cluster.workers[names[0]].process.pid))
            timings = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                pool = cluster.run("true", names)
                timings.append(time.perf_counter() - started)
                assert pool["status"] == "done" and all(j["state"] == "succeeded" for j in pool["jobs"].values())
            return idle, timings
        finally:
            cluster.stop()


def main(counts, with_peers):
    import peers
    print("workers  median_s  p90_s  min_s  (POST /job + GET ?wait until done, %d rounds)" % ROUNDS)
    for count in counts:
        (master_kb, worker_kb), timings = measure(count)
        timings.sort()
        median = statistics.median(timings)
        print("%7d  %8.4f  %5.4f  %5.4f   idle RSS after start: master %.1f MB, worker %.1f MB"
              % (count, median, timings[int(len(timings) * 0.9) - 1], timings[0],
                 master_kb / 1024, worker_kb / 1024))
        if with_peers:
            for name, run in peers.PEERS:
                seconds = run(count)
                if seconds is not None:
                    print("         %-8s %8.4f s  = %.1fx PCCI" % (name, seconds, seconds / median))
        sys.stdout.flush()


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--peers"]
    main([int(a) for a in arguments] or [1, 10, 50, 100], "--peers" in sys.argv)
