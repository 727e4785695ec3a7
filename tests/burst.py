"""A burst of submissions: several clients submitting small pools as fast as the master
takes them, then a check that every accepted job ended with its exact output.

Used by tests/test_burst.py (short) and bench/burst.py (longer, reports rates). Bounded
in count and time; talks to the master on loopback only.
"""

import http.client
import json
import threading
import time

from conftest import wait_until


class BurstClient(threading.Thread):
    def __init__(self, port, number, workers, seconds, max_pools):
        super().__init__(daemon=True)
        self.port, self.number, self.workers = port, number, workers
        self.seconds, self.max_pools = seconds, max_pools
        self.accepted = {}      # pool id -> the text each job must print
        self.busy = 0           # 429 answers (back-pressure), each followed by its Retry-After
        self.errors = []        # anything else

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        deadline = time.monotonic() + self.seconds
        n = 0
        while time.monotonic() < deadline and len(self.accepted) < self.max_pools:
            text = "c%d-%d" % (self.number, n)
            n += 1
            connection.request("POST", "/job", json.dumps({"cmd": "echo %s" % text, "workers": self.workers}))
            response = connection.getresponse()
            body = json.loads(response.read())
            if response.status == 202:
                self.accepted[body["id"]] = text + "\n"
            elif response.status == 429:
                self.busy += 1
                time.sleep(float(response.getheader("Retry-After", "1")))
            else:
                self.errors.append((response.status, body))
        connection.close()


def run_burst(cluster, workers, clients=4, seconds=10.0, max_pools=100000, settle_timeout=300):
    """Submit for `seconds`, wait for every accepted pool, and check each job's outcome."""
    started = time.monotonic()
    threads = [BurstClient(cluster.api_port, n, workers, seconds, max_pools) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    submit_seconds = time.monotonic() - started
    expected = {pool_id: text for thread in threads for pool_id, text in thread.accepted.items()}
    wait_until(lambda: cluster.api("GET", "/pools?status=running&limit=1")[1]["pools"] == [],
               timeout=settle_timeout, interval=0.5, what="every accepted pool done")
    settled_seconds = time.monotonic() - started
    wrong = []
    for pool_id, text in expected.items():
        pool = cluster.api("GET", "/pool/%s" % pool_id)[1]
        for name, job in pool["jobs"].items():
            if (job["state"], job["stdout"], job["stdoutTruncated"]) != ("succeeded", text, False):
                wrong.append((pool_id, name, job["state"], job["stdout"][:40], job["stderr"][:200]))
    return {
        "accepted": len(expected), "jobs": len(expected) * len(workers),
        "busy": sum(t.busy for t in threads), "errors": [e for t in threads for e in t.errors],
        "wrong": wrong, "submit_seconds": submit_seconds, "settled_seconds": settled_seconds,
        "accepted_per_second": len(expected) / submit_seconds,
    }
