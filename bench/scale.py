"""Scale: a real master against 1,000 and 10,000 simulated workers (bench/swarm.py).

Measures: time for all to connect, fan-out (POST /job on every worker -> all results),
sustained results per second, master RSS with all connected, and the time for all to
reconnect after the master is restarted.

    python3 bench/scale.py [COUNT ...]      (default: 1000 10000)
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import KEY, Cluster, wait_until  # noqa: E402
from fanout import rss_kb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def online_count(cluster):
    """From /health: listing 10,000 workers every half second would itself load the master."""
    return cluster.api("GET", "/health", timeout=120)[1]["workersOnline"]


def measure(count, plaintext=False):
    """One run against ``count`` simulated workers; ``plaintext`` turns the link's TLS off
    (worker_tls: false), to show what TLS costs."""
    settings = dict(log_level="warning", heartbeat_timeout="60s", handshake_timeout="60s",
                    worker_tls=not plaintext)
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        swarm = None
        try:
            cluster.start_master(**settings)
            started = time.perf_counter()
            swarm = subprocess.Popen([sys.executable, os.path.join(HERE, "swarm.py"), "--port",
                                      str(cluster.worker_port), "--key", KEY, "--count", str(count)]
                                     + (["--plaintext"] if plaintext else []))
            wait_until(lambda: online_count(cluster) == count, timeout=600, interval=0.5, what="swarm online")
            connect_s = time.perf_counter() - started
            rss_mb = rss_kb(cluster.master.process.pid) / 1024
            fanouts = []
            for _ in range(3):
                t0 = time.perf_counter()
                pool = cluster.run("true", None, wait=300)
                fanouts.append(time.perf_counter() - t0)
                assert len(pool["jobs"]) == count and pool["exitCode"] == 0
            # Sustained: several pools back to back, results counted over the whole span.
            t0 = time.perf_counter()
            rounds = max(3, 20000 // count)
            results = 0
            for _ in range(rounds):
                results += len(cluster.run("true", None, wait=300)["jobs"])
            rate = results / (time.perf_counter() - t0)
            rss_after_mb = rss_kb(cluster.master.process.pid) / 1024
            cluster.master.stop()
            t0 = time.perf_counter()
            cluster.start_master(**settings)
            wait_until(lambda: online_count(cluster) == count, timeout=600, interval=0.5, what="reconnected")
            reconnect_s = time.perf_counter() - t0
            return dict(count=count, connect_s=connect_s, fanout_s=min(fanouts), rate=rate, rss_mb=rss_mb,
                        rss_after_mb=rss_after_mb, reconnect_s=reconnect_s)
        finally:
            if swarm is not None:
                swarm.kill()
                swarm.wait()
            cluster.stop()


def main(counts):
    print("workers  connect_s  fanout_s  results/s  master_RSS_MB(idle/after)  reconnect_s")
    for count in counts:
        r = measure(count)
        print("%7d  %9.2f  %8.3f  %9.0f  %10.1f / %-10.1f  %11.2f" % (
            r["count"], r["connect_s"], r["fanout_s"], r["rate"], r["rss_mb"], r["rss_after_mb"], r["reconnect_s"]))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
