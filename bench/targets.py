"""Time to refuse a target expression, against its size: what a read token's
GET /workers?target= or a POST /job costs the master's event loop before the answer.

In-process and pure (pcci.master.validation.target, then the resolution a pool-sized
target goes on to): no master is started. Prints one line per expression: its bytes, the
names it stands for, the answer, and the median time of several runs.

    python3 bench/targets.py
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pcci.errors import ApiError                # noqa: E402
from pcci.master.validation import target       # noqa: E402
from pcci.targets import Cluster, resolve       # noqa: E402

LIMIT = 20000       # max_pool_jobs' default
CASES = [("n[1-%d]" % size, "one range of %d" % size) for size in (10 ** 3, 10 ** 6, 25 * 10 ** 6, 10 ** 15)] + [
    (",".join(["n[1-20000]"] * count), "%d x n[1-20000]" % count) for count in (1, 10, 100, 400)] + [
    ("r[1-9]n[1-9999]", "nested 9 x 9999"),
    ("n[0-9999999999999999999999]", "overflow"),
    ("n[1-2]" * 200, "200 ranges in a name"),
    ("n[1-19999],web", "pool-sized, resolved"),
]


def timed(expression, runs=5):
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        try:
            terms, _ = target(expression, None, LIMIT)
            answer = "%d names" % len(resolve(terms, Cluster(list, dict, {}), LIMIT))
        except ApiError as exc:
            answer = "400 %s" % exc.code
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def main():
    print("%-28s %6s  %-22s %10s" % ("expression", "bytes", "answer", "median"))
    for expression, label in CASES:
        seconds, answer = timed(expression)
        print("%-28s %6d  %-22s %8.3f ms" % (label, len(expression), answer, seconds * 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
