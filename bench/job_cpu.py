"""CPU a worker spends per job, its own and its jobs', before/after in one run.

    python3 bench/job_cpu.py [--base PATH] [ROUNDS] [REPEATS]     (default 500 jobs, 2 repeats)

One master, one worker of this tree and (with --base) one importing pcci from PATH (a
``git worktree`` of the code to compare against). Each worker runs ROUNDS jobs of
`true`, one at a time as bench/latency.py sends them, then the other; the order flips
each repeat (AB BA ...). The CPU comes from /proc/PID/stat: the worker's utime + stime,
and its reaped children's cutime + cstime (the jobs: `sh -c true`).
"""

import http.client
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import Cluster  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """(the process's own CPU, its reaped children's), in seconds."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) / TICKS for value in fields[11:15])
    return utime + stime, cutime + cstime


def run_jobs(cluster, name, rounds):
    connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=60)
    body = json.dumps({"cmd": "true", "workers": [name]})
    for _ in range(rounds):
        connection.request("POST", "/job", body)
        pool_id = json.loads(connection.getresponse().read())["id"]
        connection.request("GET", "/pool/%s?wait=30" % pool_id)
        pool = json.loads(connection.getresponse().read())
        assert pool["status"] == "done" and pool["exitCode"] == 0, pool
    connection.close()


def main(arguments):
    base = None
    if "--base" in arguments:
        at = arguments.index("--base")
        base = os.path.abspath(arguments[at + 1])
        arguments = arguments[:at] + arguments[at + 2:]
    rounds = int(arguments[0]) if arguments else 500
    repeats = int(arguments[1]) if len(arguments) > 1 else 2
    sides = [("after", None)] + ([("before", base)] if base else [])
    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(directory)
        cluster.start_master(log_level="warning", heartbeat_timeout="30s")
        try:
            workers = {}
            for side, code in sides:
                workers[side] = cluster.start_worker(side, wait=False, python_path=[code] if code else (),
                                                     log_level="warning", heartbeat_interval="5s", link_timeout="20s")
            cluster.wait_online(*workers, timeout=60)
            for side in workers:
                run_jobs(cluster, side, 20)     # warm up
            print("ms per job of `true` (load average %s)" % " ".join(open("/proc/loadavg").read().split()[:3]))
            for repeat in range(repeats):
                for side, _ in (sides if repeat % 2 else list(reversed(sides))):
                    worker = workers[side]
                    own, jobs = cpu_seconds(worker.process.pid)
                    started = time.perf_counter()
                    run_jobs(cluster, side, rounds)
                    elapsed = time.perf_counter() - started
                    own_after, jobs_after = cpu_seconds(worker.process.pid)
                    print("  %-6s worker %.3f  its jobs %.3f  round trip %.2f" % (
                        side, (own_after - own) * 1000 / rounds, (jobs_after - jobs) * 1000 / rounds,
                        elapsed * 1000 / rounds), flush=True)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
