"""Latency: one job's round trip on loopback (POST /job, then GET /pool/<id>?wait=), p50 and p99.

    python3 bench/latency.py [ROUNDS]      (default 500)
"""

import http.client
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import Cluster  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def round_trips(cluster, rounds):
    """Seconds per round trip on a keep-alive connection, as a script would call, after 20 warm-ups."""
    connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port)
    body = json.dumps({"cmd": "true", "workers": ["pi1"]})
    samples = []
    for n in range(rounds + 20):
        started = time.perf_counter()
        connection.request("POST", "/job", body)
        pool_id = json.loads(connection.getresponse().read())["id"]
        connection.request("GET", "/pool/%s?wait=10" % pool_id)
        pool = json.loads(connection.getresponse().read())
        elapsed = time.perf_counter() - started
        assert pool["status"] == "done" and pool["exitCode"] == 0
        if n >= 20:
            samples.append(elapsed)
    connection.close()
    return samples


def main(rounds):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="warning")
            cluster.start_worker("pi1", log_level="warning")
            samples = round_trips(cluster, rounds)
            print("round trips: %d  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms" % (
                rounds, percentile(samples, 0.5) * 1000, percentile(samples, 0.9) * 1000,
                percentile(samples, 0.99) * 1000, max(samples) * 1000))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
