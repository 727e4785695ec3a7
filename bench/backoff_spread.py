"""After a master restart, when do the workers come back? The workers' own backoff, simulated.

Each of COUNT workers loses a long session at t = 0 and dials again as the worker does
(``pcci.worker.backoff.MasterRotation`` with the default ``reconnect_min``/``reconnect_max``,
one master): every dial before the master is back at DOWN seconds is refused at once, the
first one after it gets in. No network, no master: the backoff alone, so the numbers are
exact for the policy and free of this machine's load. Printed for each DOWN: when the last
worker is back (seconds after the master is), the median, and the most workers that dial
in within any 100 ms after it is up (what its handshakes must absorb).

    python3 bench/backoff_spread.py [--count N] [--swarm] [DOWN ...]      (default 10000; 1 2 3 5 10 30)

--swarm simulates bench/swarm.py's own backoff instead (what bench/scale.py measures).
"""

import argparse
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci.config import WORKER_KEYS  # noqa: E402
from pcci.worker.backoff import MasterRotation  # noqa: E402


def worker_delays(rng):
    """The real worker's delays, one after another, from a long session's end."""
    rotation = MasterRotation([("m", 7070)], WORKER_KEYS["reconnect_min"][0], WORKER_KEYS["reconnect_max"][0])
    stable = True
    while True:
        yield rotation.after(stable, rng.random())
        stable = False


def swarm_delays(rng):
    """bench/swarm.py's: random() * min(5, 0.2 * 2 ** attempt)."""
    attempt = 0
    while True:
        attempt += 1
        yield rng.random() * min(5.0, 0.2 * 2 ** min(attempt, 5))


def back_at(delays, down):
    """When a worker whose master is down until ``down`` gets in (dials take no time)."""
    now = 0.0
    for delay in delays:
        now += delay
        if now >= down:
            return now


def spread(count, down, delays_of, seed=1):
    rng = random.Random(seed)
    times = sorted(back_at(delays_of(rng), down) - down for _ in range(count))
    peak, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > 0.1:
            start += 1
        peak = max(peak, end - start + 1)
    return times[-1], statistics.median(times), peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--swarm", action="store_true")
    parser.add_argument("down", nargs="*", type=float, default=[1, 2, 3, 5, 10, 30])
    args = parser.parse_args()
    delays_of = swarm_delays if args.swarm else worker_delays
    print("%s, %d workers" % ("bench/swarm.py's backoff" if args.swarm else "the worker's backoff (defaults)",
                              args.count))
    print("master down s  last back after s  median s  most in 100 ms")
    for down in args.down:
        last, median, peak = spread(args.count, down, delays_of)
        print("%13.1f  %17.2f  %8.2f  %14d" % (down, last, median, peak))


if __name__ == "__main__":
    main()
