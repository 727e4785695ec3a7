"""What one connected, idle worker costs the master: RSS per worker, from a focused run.

A real master, then a swarm of simulated workers (bench/swarm.py: TLS, key proofs,
heartbeats every 5 s) that connect and stay idle. Printed: the master's RSS before the
swarm, with all connected, and 3 s later; the growth per worker in KB; the master's CPU
seconds while they connected. Faster than bench/scale.py (no fan-outs, no restart), for
measuring one candidate change at 1,000-2,000 workers before a 10,000 run.

    python3 bench/idle_memory.py [--pin] [COUNT ...]        (default: 2000)

--pin: the master on CPU 0, the swarm and this bench on CPU 1 (as bench/scale.py --pin).
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import KEY, Cluster, wait_until  # noqa: E402
from fanout import rss_kb  # noqa: E402
from scale import cpu_seconds, online_count, pin_all_threads  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(count, pin=False):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        swarm = None
        try:
            master = cluster.start_master(log_level="warning", heartbeat_timeout="60s", handshake_timeout="60s")
            pid = master.process.pid
            if pin:
                pin_all_threads(pid, {0})
            time.sleep(1)
            empty_kb, cpu_before = rss_kb(pid), cpu_seconds(pid)
            started = time.perf_counter()
            swarm = subprocess.Popen((["taskset", "-c", "1"] if pin else [])
                                     + [sys.executable, os.path.join(HERE, "swarm.py"), "--port", str(cluster.worker_port),
                                        "--key", KEY, "--count", str(count)])
            wait_until(lambda: online_count(cluster) == count, timeout=1800, interval=0.5, what="swarm online")
            connect_s = time.perf_counter() - started
            connect_cpu_s = cpu_seconds(pid) - cpu_before
            connected_kb = rss_kb(pid)
            time.sleep(3)
            settled_kb = rss_kb(pid)
            return dict(count=count, empty_mb=empty_kb / 1024, connected_mb=connected_kb / 1024,
                        settled_mb=settled_kb / 1024, per_worker_kb=(settled_kb - empty_kb) / count,
                        connect_s=connect_s, connect_cpu_s=connect_cpu_s)
        finally:
            if swarm is not None:
                swarm.kill()
                swarm.wait()
            cluster.stop()


def main(arguments):
    pin = arguments[:1] == ["--pin"]
    if pin:
        arguments = arguments[1:]
        os.sched_setaffinity(0, {1})
    counts = [int(a) for a in arguments] or [2000]
    print("workers  master_RSS_MB(empty/all in/3 s later)  KB_per_worker  connect_s (master CPU s)  load")
    for count in counts:
        r = measure(count, pin)
        print("%7d  %8.1f / %.1f / %-8.1f  %13.2f  %9.2f (%.2f)  %s" % (
            r["count"], r["empty_mb"], r["connected_mb"], r["settled_mb"], r["per_worker_kb"], r["connect_s"],
            r["connect_cpu_s"], "%.1f" % os.getloadavg()[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
