"""Before/after on a busy machine: two clusters up at once, their rounds interleaved.

    python3 bench/paired.py --base PATH latency [ROUNDS]       (default 500)
    python3 bench/paired.py --base PATH fanout N [ROUNDS]      (default 20)
    python3 bench/paired.py --base PATH scale N [ROUNDS]       (default 6; simulated workers)

PATH is a checkout of the code to compare against (``git worktree add``). Its master
and workers import pcci from PATH; the others from this repository. One round of one
cluster, then one of the other, in the order ABBA ABBA ..., so a burst of load from
other processes falls on both alike. A round is bench/latency.py's (POST /job, GET
?wait, `true` on one worker), bench/fanout.py's (`true` on N workers) or a pool on N
workers simulated by each side's bench/swarm.py, as bench/scale.py measures results/s.
In fanout, each round of the pair is followed by clush and pdsh on N targets (bench/peers.py),
so their ratio to PCCI comes from the same moments.
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import KEY, Cluster, wait_until  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def start(base, code, count):
    """A master and ``count`` workers importing pcci from ``code`` (None: this repository)."""
    cluster = Cluster(base)
    if code is not None:
        cluster.python_path = [code]
    cluster.start_master(log_level="warning", heartbeat_timeout="30s")
    names = ["w%03d" % n for n in range(count)]
    for name in names:
        cluster.start_worker(name, wait=False, python_path=[code] if code else (), log_level="warning",
                             heartbeat_interval="5s", link_timeout="20s")
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                cluster.wait_online(*names, timeout=180)
                break
            except OSError:         # a master busy with 100 handshakes on a loaded machine: ask again
                if time.monotonic() > deadline:
                    raise
    except BaseException:
        cluster.stop()      # not yet in the caller's hands: a failed start must not leave 100 workers running
        raise
    return cluster, names


def start_swarmed(base, code, count):
    """A master and ``count`` workers simulated by bench/swarm.py of ``code`` (None: this one)."""
    cluster = Cluster(base)
    if code is not None:
        cluster.python_path = [code]
    cluster.start_master(log_level="warning", heartbeat_timeout="60s", handshake_timeout="60s")
    cluster.swarm = subprocess.Popen([sys.executable, os.path.join(code or os.path.join(HERE, ".."), "bench",
                                                                   "swarm.py"),
                                      "--port", str(cluster.worker_port), "--key", KEY, "--count", str(count)])
    wait_until(lambda: cluster.api("GET", "/health", timeout=120)[1].get("workersOnline", 0) == count,
               timeout=900, interval=1, what="swarm online")
    return cluster, None


def stop(cluster):
    swarm = getattr(cluster, "swarm", None)
    if swarm is not None:
        swarm.kill()
        swarm.wait()
    cluster.stop()


def one_round(cluster, connection, names):
    body = json.dumps({"cmd": "true", "workers": names} if names is not None else {"cmd": "true"})
    started = time.perf_counter()
    connection.request("POST", "/job", body)
    pool_id = json.loads(connection.getresponse().read())["id"]
    connection.request("GET", "/pool/%s?wait=60" % pool_id)
    pool = json.loads(connection.getresponse().read())
    elapsed = time.perf_counter() - started
    assert pool["status"] == "done" and pool["exitCode"] == 0, pool
    return elapsed


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main(arguments):
    base_code = os.path.abspath(arguments[arguments.index("--base") + 1])
    rest = [a for i, a in enumerate(arguments) if a != "--base" and arguments[i - 1] != "--base"]
    kind = rest[0]
    count = 1 if kind == "latency" else int(rest[1])
    rounds = int(rest[1 if kind == "latency" else 2]) if len(rest) > (1 if kind == "latency" else 2) \
        else {"latency": 500, "fanout": 20, "scale": 6}[kind]
    with tempfile.TemporaryDirectory() as directory:
        clusters = {}
        try:
            for side, code in (("before", base_code), ("after", None)):
                clusters[side] = (start_swarmed if kind == "scale" else start)(
                    os.path.join(directory, side), code, count)
            connections = {side: http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=300)
                           for side, (cluster, _) in clusters.items()}
            samples = {"before": [], "after": [], "clush": [], "pdsh": []}
            warm_up = {"latency": 20, "fanout": 2, "scale": 1}[kind]
            for n in range(rounds + warm_up):
                order = ("before", "after") if n % 4 in (0, 3) else ("after", "before")
                for side in order:
                    cluster, names = clusters[side]
                    elapsed = one_round(cluster, connections[side], names)
                    if n >= warm_up:
                        samples[side].append(elapsed)
                if kind == "fanout" and n >= warm_up:
                    for name in ("clush", "pdsh"):
                        seconds = getattr(peers, name)(count)
                        if seconds is not None:
                            samples[name].append(seconds)
        finally:
            for cluster, _ in clusters.values():
                stop(cluster)
    print("%s, %d worker(s), %d rounds each, interleaved ABBA; before = %s" % (kind, count, rounds, base_code))
    for side in [side for side in samples if samples[side]]:
        values = samples[side]
        print("  %-6s  median %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  min %8.2f ms" % (
            side, statistics.median(values) * 1000, percentile(values, 0.9) * 1000,
            percentile(values, 0.99) * 1000, min(values) * 1000))
    print("  after / before, median: %.3f" % (statistics.median(samples["after"]) / statistics.median(samples["before"])))
    for peer in [name for name in ("clush", "pdsh") if samples[name]]:
        print("  %s / PCCI, medians: before %.2fx, after %.2fx" % (
            peer, statistics.median(samples[peer]) / statistics.median(samples["before"]),
            statistics.median(samples[peer]) / statistics.median(samples["after"])))
    if kind == "scale":
        for side in ("before", "after"):
            print("  %-6s  results/s over all rounds: %.0f" % (side, count * rounds / sum(samples[side])))


if __name__ == "__main__":
    main(sys.argv[1:])
