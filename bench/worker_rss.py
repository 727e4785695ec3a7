"""A connected, idle worker's RSS, before/after in one run.

    python3 bench/worker_rss.py TREE [TREE ...]     e.g. ../base . . ../base

One master; for each TREE in turn (a checkout: ``.`` is this one), a worker importing
pcci from it is started, waited for online, left 2 s, measured (/proc/PID/status and
smaps_rollup) and stopped. Run `python3 -m compileall -q TREE/pcci` first to measure
what an installed worker runs (the .deb byte-compiles its modules), or leave the
.pyc files out (PYTHONDONTWRITEBYTECODE) to measure what the tests run.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import Cluster  # noqa: E402


def memory(pid):
    """{name: MB} of VmRSS, RssAnon and RssFile (status) and Pss (smaps_rollup)."""
    found = {}
    for path, names in (("status", ("VmRSS:", "RssAnon:", "RssFile:")), ("smaps_rollup", ("Pss:",))):
        with open("/proc/%d/%s" % (pid, path)) as handle:
            for line in handle:
                parts = line.split()
                if parts and parts[0] in names:
                    found[parts[0][:-1]] = int(parts[1]) / 1024
    return found


def main(trees):
    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(directory)
        cluster.start_master(log_level="warning")
        try:
            for n, tree in enumerate(os.path.abspath(t) for t in trees):
                name = "w%d" % n
                worker = cluster.start_worker(name, wait=False, python_path=[tree], log_level="warning")
                cluster.wait_online(name, timeout=60)
                time.sleep(2)
                found = memory(worker.process.pid)
                print("%-40s RSS %5.1f MB (anon %.1f, file %.1f, PSS %.1f)" % (
                    tree[-40:], found["VmRSS"], found["RssAnon"], found["RssFile"], found["Pss"]), flush=True)
                worker.stop()
        finally:
            cluster.stop()


if __name__ == "__main__":
    main(sys.argv[1:] or ["."])
