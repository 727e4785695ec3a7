"""Flood during a restart: how long N known workers take to come back after a master
restart, with and without an idle-connection flood on both ports, on two versions of the
code in one run.

    python3 bench/flood_restart.py [--workers 200] [--before REV] [--handshake-timeout 5]

The workers are bench/swarm.py's simulated ones (real handshakes, from 127.1.x.y). The
flood is tests/flood.py's: 17 addresses x 64 idle connections on the worker port and on
the API port, each address in a /24 of its own, re-opened as soon as the master closes
them (issue 24). ``--before`` names a git revision whose pcci/ is extracted to a temporary
directory and run as the master's code for the "before" rows (default: none, only this
tree). Each row: seconds from the master's new process to every worker online (or
"never" within the bound), and how many /health probes (every 0.25 s) went unanswered.
"""

import argparse
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
from conftest import KEY, Cluster, wait_until  # noqa: E402
from flood import Flood, flood_addresses  # noqa: E402


def health(cluster):
    """workersOnline from /health, or None when it did not answer."""
    try:
        status, body = cluster.api("GET", "/health", timeout=5)
        return body.get("workersOnline", 0) if status == 200 else None
    except OSError:
        return None


def measure(code_dir, workers, flooded, handshake_timeout, bound):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        if code_dir:
            cluster.python_path = [code_dir]
        swarm = flood = None
        try:
            cluster.start_master(log_level="warning", handshake_timeout="%gs" % handshake_timeout)
            swarm = subprocess.Popen([sys.executable, os.path.join(HERE, "swarm.py"), "--port",
                                      str(cluster.worker_port), "--key", KEY, "--count", str(workers)])
            wait_until(lambda: health(cluster) == workers, timeout=120, interval=0.5, what="swarm online")
            if flooded:
                flood = Flood([cluster.worker_port, cluster.api_port], flood_addresses(17), 64,
                              duration=bound + 60).start()
                wait_until(lambda: flood.open_now >= 1900, timeout=30, what="the flood in place")
            cluster.master.stop()
            started = time.monotonic()
            cluster.master.start()
            unanswered, back = 0, None
            while time.monotonic() - started < bound:
                online = health(cluster)
                if online is None:
                    unanswered += 1
                elif online == workers:
                    back = time.monotonic() - started
                    break
                time.sleep(0.25)
            log_lines = len(cluster.master.log().splitlines())
            return back, unanswered, log_lines
        finally:
            if flood is not None:
                flood.stop()
            if swarm is not None:
                swarm.terminate()
                swarm.wait(10)
            cluster.stop()


def extract(rev, directory):
    """pcci/ as it was at ``rev``, into ``directory`` (git archive; the work tree is untouched)."""
    archive = subprocess.run(["git", "-C", REPO, "archive", rev, "pcci"], capture_output=True, check=True).stdout
    path = os.path.join(directory, "code.tar")
    with open(path, "wb") as handle:
        handle.write(archive)
    with tarfile.open(path) as tar:
        tar.extractall(directory)
    return directory


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--before", help="a git revision to compare with (its pcci/ runs as the master)")
    parser.add_argument("--handshake-timeout", type=float, default=5.0)
    parser.add_argument("--bound", type=float, default=60.0, help="give up on a run after this many seconds")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as scratch:
        versions = [("this tree", None)]
        if args.before:
            versions.insert(0, ("before (%s)" % args.before, extract(args.before, scratch)))
        print("%d known workers, handshake_timeout %gs, flood 17 x 64 idle connections on each port"
              % (args.workers, args.handshake_timeout))
        print("%-22s %-6s %14s %20s %10s" % ("code", "flood", "all back (s)", "/health unanswered", "log lines"))
        for flooded in (False, True):
            for label, code in versions:
                back, unanswered, lines = measure(code, args.workers, flooded, args.handshake_timeout, args.bound)
                print("%-22s %-6s %14s %20d %10d" % (label, "yes" if flooded else "no",
                                                     "%.1f" % back if back is not None else
                                                     "never (%gs)" % args.bound, unanswered, lines), flush=True)


if __name__ == "__main__":
    main()
