"""Schedules: how late each due time fires (drift) and what the scheduler costs.

A real master (SQLite) with simulated workers (bench/swarm.py) and 1,000 schedules, each
on one worker. Phases, alternated twice in one run (the machine is shared: compare
phases of the same run):

* ``none``   -- no schedule: the master with its workers, heartbeats and all (before,
  and after each round's schedules are deleted);
* ``idle``   -- 1,000 schedules due every hour (none due in the window): what holding
  them costs while the scheduler sleeps (it sleeps until the next due time, no tick);
* ``firing`` -- the same 1,000 schedules every 10 s, all due at the same instants (the
  worst case: 1,000 pools at once every 10 s, 100 pools a second on average).

For each phase: the master's CPU seconds per second and its context switches per
second (psutil) over the window. For ``firing``: drift = a pool's createdTime minus its
scheduledFor, and its jobs' start (startTime, after the pool's commit and the run frame's
trip) minus scheduledFor, over every pool made, as p50 / p99 / max.

    python3 bench/schedules.py [--workers 1000] [--schedules 1000] [--window 30]
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import KEY, Cluster, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def stamp(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def window(process, seconds):
    """(CPU seconds per second, context switches per second) of ``process`` over ``seconds``."""
    cpu0, switches0 = process.cpu_times(), process.num_ctx_switches()
    time.sleep(seconds)
    cpu1, switches1 = process.cpu_times(), process.num_ctx_switches()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    switches = (switches1.voluntary - switches0.voluntary) + (switches1.involuntary - switches0.involuntary)
    return cpu / seconds, switches / seconds


def set_when(cluster, count, when):
    for n in range(count):
        status, answer = cluster.api("PUT", "/schedules/s%04d" % n, {"when": when}, timeout=60)
        assert status == 200, answer


def scheduled_since(cluster, since):
    """Every scheduled pool created after ``since`` (epoch seconds): (created, due, started)."""
    found, before = [], None
    while True:
        _, page = cluster.api("GET", "/pools?limit=500" + ("&before=" + before if before else ""), timeout=120)
        for pool in page["pools"]:
            if pool["scheduledBy"]:
                found.append((stamp(pool["createdTime"]), stamp(pool["scheduledFor"]),
                              stamp(pool["startTime"]) if pool["startTime"] else None))
        if not page["pools"] or stamp(page["pools"][-1]["createdTime"]) < since or not page.get("next"):
            break
        before = page["next"]
    return [found_one for found_one in found if found_one[0] >= since]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        swarm = None
        try:
            cluster.start_master(log_level="warning", heartbeat_timeout="60s", handshake_timeout="60s",
                                 max_schedules=args.schedules)
            results = {"none": [], "idle": [], "firing": []}
            drifts, starts = [], []
            swarm = subprocess.Popen([sys.executable, os.path.join(HERE, "swarm.py"), "--port",
                                      str(cluster.worker_port), "--key", KEY, "--count", str(args.workers)])
            wait_until(lambda: cluster.api("GET", "/health", timeout=120)[1]["workersOnline"] == args.workers,
                       timeout=600, interval=0.5, what="swarm online")
            master = psutil.Process(cluster.master.process.pid)
            results["none"].append(window(master, args.window))
            for _ in range(args.rounds):
                for n in range(args.schedules):
                    status, answer = cluster.api("POST", "/schedules", {
                        "name": "s%04d" % n, "when": "every 1h", "cmd": "true",
                        "workers": "sim%05d" % (n % args.workers)}, timeout=60)
                    assert status == 201, answer
                results["idle"].append(window(master, args.window))
                set_when(cluster, args.schedules, "every 10s")
                # Due times are multiples of 10 s: start the window at one, so it holds whole bursts.
                time.sleep(10 - time.time() % 10 + 0.5)
                since = time.time()
                results["firing"].append(window(master, args.window))
                until = time.time()
                set_when(cluster, args.schedules, "every 1h")       # quiet again before the pools are read
                made = [one for one in scheduled_since(cluster, since - 10) if since <= one[1] <= until]
                drifts += [created - due for created, due, _ in made]
                starts += [started - due for _, due, started in made if started is not None]
                for n in range(args.schedules):
                    assert cluster.api("DELETE", "/schedules/s%04d" % n, timeout=60)[0] == 200
                results["none"].append(window(master, args.window))
            print("master: %d simulated workers, %d schedules, windows of %gs, %d rounds"
                  % (args.workers, args.schedules, args.window, args.rounds))
            for phase, samples in results.items():
                print("%-7s CPU %s s/s, context switches %s /s" % (
                    phase, " ".join("%.3f" % cpu for cpu, _ in samples), " ".join("%.0f" % sw for _, sw in samples)))
            warnings = [line for line in cluster.master.log().splitlines() if "schedule " in line]
            print("master log: %d line(s) about schedules%s" % (len(warnings), "".join(
                "\n  " + line[:300] for line in warnings[:5])))
            for what, values in (("drift (createdTime - due)", drifts), ("jobs started (startTime - due)", starts)):
                print("%s over %d pools: p50 %.3f s, p99 %.3f s, max %.3f s" % (
                    what, len(values), percentile(values, 0.5), percentile(values, 0.99),
                    max(values) if values else 0))
        finally:
            if swarm is not None:
                swarm.kill()
                swarm.wait()
            cluster.stop()


if __name__ == "__main__":
    main()
