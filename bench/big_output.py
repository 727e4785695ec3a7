"""One job printing a lot: the peak memory (VmHWM) of the master and the worker, on the
SQLite store or on MariaDB, for trees side by side (issue 26's row: each at most
1.2 x output_cap_bytes + 30 MB).

    python3 bench/big_output.py [--megabytes 200] [--runs 2] [--backend sqlite|mariadb|both] TREE...

Each run measures every TREE once, in turn (A B A B ...), each in its own process that
imports that tree's test helpers, so the daemons run that tree's code. A run: a real
master and worker on loopback (cap = MEGABYTES + 1 MiB, max_frame_bytes as big as the
config asks, the shipped heartbeat and link timeouts), a follower of the pool's event stream reading all of it as it comes (as
``pcci run`` does), the job ``head -c N /dev/zero | tr '\\0' x; sleep 3``; when the pool
is done, VmHWM of both (the peak from start to the result stored) and the CPU
seconds each spent from submit to then (a measure that load does not inflate as it
does the wall time), then one
GET /pool/ID read in pieces and checked, then the master's VmHWM again (the peak with
that answer). MariaDB: one throwaway server (tests/mariadb.py) with max_allowed_packet
1 GiB, so a tree that stores the output as one value can store it; a fresh database each
measurement. Prints one line per measurement and the load average.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def vm_hwm_mb(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM for %d" % pid)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat, clock ticks)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tree, megabytes, store_url):
    """In a process of its own: this tree's Cluster; the numbers as JSON on stdout."""
    sys.path[:0] = [os.path.join(tree, "tests"), tree]
    import http.client
    from conftest import Cluster
    from pcci.client.events import parse_events
    total = megabytes * 1000 * 1000
    cap = total + 1024 * 1024
    frame = 12 * cap + 2 * 1024 * 1024
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            extra = {}
            if store_url:
                password = os.path.join(base, "db-password")
                with open(password, "w") as handle:
                    handle.write("secret\n")
                os.chmod(password, 0o600)
                # A long lease: on a busy 2-core machine, a transaction of 200 MB held up the
                # lease's renewal past a short one (the master stepped down, before and after).
                extra = dict(store_url=store_url, store_password_file=password, lease_time="120s")
            # The shipped heartbeat settings, not the test suite's (3 s): a 200 MB frame holds
            # the worker's heartbeats behind it, and on a busy machine took longer than 3 s,
            # so the link dropped and the result was sent again (before and after alike).
            cluster.start_master(log_level="warning", max_frame_bytes=frame, heartbeat_timeout="15s", **extra)
            for _ in range(600):        # on MariaDB it takes the lease first
                if cluster.api("GET", "/health?role=active", token=None)[0] == 200:
                    break
                time.sleep(0.05)
            worker = cluster.start_worker("pi1", log_level="warning", output_cap_bytes=cap, max_frame_bytes=frame,
                                          heartbeat_interval="5s", link_timeout="20s")
            pids = {"master": cluster.master.process.pid, "worker": worker.process.pid}
            start = {name: vm_hwm_mb(pid) for name, pid in pids.items()}
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            status, submitted = cluster.api("POST", "/job", {"cmd": "head -c %d /dev/zero | tr '\\0' x; sleep 3" % total,
                                                             "workers": ["pi1"]})
            assert status == 202, submitted
            pool_id = submitted["id"]
            began = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=300)
            connection.request("GET", "/pool/%s/events" % pool_id)
            response = connection.getresponse()
            seen = 0
            for _, kind, data in parse_events(response):
                if kind == "output":
                    seen += len(json.loads(data)["text"])
            connection.close()
            took = time.monotonic() - began
            stored = {name: vm_hwm_mb(pid) for name, pid in pids.items()}
            cpu = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
            connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=300)
            connection.request("GET", "/pool/%s" % pool_id)
            response = connection.getresponse()
            assert response.status == 200
            tail, size = b"", 0
            while True:
                piece = response.read(1 << 20)
                if not piece:
                    break
                size += len(piece)
                tail = (tail + piece)[-200:]
            connection.close()
            assert b'"exitCode":0' in tail or size > total, tail
            read = vm_hwm_mb(pids["master"])
            return dict(start=start, stored=stored, cpu=cpu, master_after_get=read, seen=seen, total=total, body=size,
                        seconds=took, target=1.2 * cap / 2 ** 20 + 30)
        except BaseException:
            if cluster.master is not None:
                print(cluster.master.log()[-2000:], file=sys.stderr)
            raise
        finally:
            cluster.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--backend", choices=("sqlite", "mariadb", "both"), default="sqlite")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.trees[0], args.megabytes, args.store_url)))
        return
    backends = ["sqlite", "mariadb"] if args.backend == "both" else [args.backend]
    server = base = None
    if "mariadb" in backends:
        sys.path[:0] = [os.path.join(HERE, "..", "tests")]
        import mariadb
        server, base = mariadb.start_throwaway()
        server.sql("SET GLOBAL max_allowed_packet = 1073741824")
    try:
        count = 0
        for run in range(args.runs):
            for backend in backends:
                for tree in args.trees:
                    url = ""
                    if backend == "mariadb":
                        count += 1
                        url = mariadb.fresh_database(server, "pcci_big_%d_%d" % (os.getpid(), count))
                    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", "--megabytes",
                                          str(args.megabytes), "--store-url", url, tree],
                                         capture_output=True, text=True, timeout=1200)
                    load = os.getloadavg()[0]
                    if out.returncode != 0:
                        print("run %d %s %s: failed: %s" % (run + 1, backend, tree, out.stderr[-3000:]), flush=True)
                        continue
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    print("run %d %-7s %-28s master %4.0f -> %4.0f MB (with GET %4.0f)  worker %4.0f -> %4.0f MB  "
                          "target %.0f  follower got %.0f%%  %.1f s  CPU s master %.2f worker %.2f  load %.1f"
                          % (run + 1, backend, tree, r["start"]["master"], r["stored"]["master"],
                             r["master_after_get"], r["start"]["worker"], r["stored"]["worker"], r["target"],
                             100.0 * r["seen"] / r["total"], r["seconds"], r["cpu"]["master"], r["cpu"]["worker"],
                             load), flush=True)
    finally:
        if server is not None:
            server.stop()
            import shutil
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
