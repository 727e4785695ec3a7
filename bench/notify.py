"""Notifications: what `notify` adds to a submit (its outbox rows are stored before the
pool, one more SQLite transaction with its fsync), and how fast the outbox drains to a
receiver that accepts at once.

    python3 bench/notify.py [--pools 200] [--rounds 3]

The real master in this process (tests/harness.py) with one fake worker, a gevent HTTP
receiver on loopback; rounds alternate plain and notify submits, so both see the same
machine. Prints the median submit time of each kind per round (plain; notify on failed
for pools that succeed, so nothing is sent; notify on finished, sent at once), and when the
last notification arrived.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import gevent
import gevent.pywsgi

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from harness import InProcessMaster  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    got = []

    def receiver(environ, start_response):
        environ["wsgi.input"].read()
        got.append(time.monotonic())
        start_response("204 No Content", [])
        return [b""]
    server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), receiver, log=None, error_log=None)
    server.start()
    url = "http://127.0.0.1:%d/hook" % server.server_port
    with tempfile.TemporaryDirectory() as base:
        master = InProcessMaster(base, notify_allow=["127.0.0.0/8"], log_level="warning")
        try:
            master.start_worker("w1")
            for round_number in range(1, args.rounds + 1):
                # skipped: rows stored and armed, nothing sent (on failed, the pools succeed).
                for kind, on in (("plain", None), ("skipped", ["failed"]), ("sent", ["finished"])):
                    extra = {"notify": [{"url": url, "on": on, "secret": "s" * 32}]} if on else {}
                    times = []
                    for _ in range(args.pools):
                        started = time.monotonic()
                        status, answer = master.api("POST", "/job", dict(extra, cmd="true", workers=["w1"]))
                        times.append(time.monotonic() - started)
                        assert status == 202, answer
                    print("round %d %-7s: median submit %.2f ms (p90 %.2f ms) over %d pools"
                          % (round_number, kind, statistics.median(times) * 1000,
                             sorted(times)[int(len(times) * 0.9)] * 1000, args.pools))
            expected = args.rounds * args.pools     # the "sent" ones
            first = time.monotonic()
            deadline = first + 120
            while len(got) < expected and time.monotonic() < deadline:
                gevent.sleep(0.05)
            print("delivered %d of %d notifications; the last %.1f s after the last submit"
                  % (len(got), expected, (got[-1] - first) if got else float("nan")))
        finally:
            master.stop()
            server.stop()


if __name__ == "__main__":
    main()
