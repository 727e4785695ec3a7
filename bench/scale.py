"""Scale: a real master against 1,000 and 10,000 simulated workers (bench/swarm.py).

Measures: time for all to connect, fan-out (POST /job on every worker -> all results),
sustained results per second, master RSS with all connected, and the time for all to
reconnect after the master is restarted.

    python3 bench/scale.py [--pin] [--profile PREFIX] [--store sqlite|mariadb|both] [COUNT ...]
                                                                (default: sqlite; 1000 10000)

With --pin the master (every thread of it) runs on CPU 0 and the swarm and this bench on
CPU 1, so the master is measured alone: on a 2-core machine the swarm, which does ten
thousand workers' side of each TLS handshake, otherwise takes the master's core too. The
master's CPU seconds are printed either way (a fan-out's, the mean of three, and from
the restart until all are back, its start included): on a shared machine they vary less
than the wall times.

With --profile PREFIX, py-spy (``PY_SPY``, else ``py-spy`` on the PATH) samples the master
during the three timed fan-outs only, not the connecting or the restart, and writes
PREFIX-COUNT.txt (py-spy's raw format: one line per stack, its sample count last; the
store's thread included, idle samples not). Compare fan-out times only between runs
that both profiled or both did not: py-spy stops the master to read each sample.

With --store mariadb the master keeps its pools in a real MariaDB (InnoDB, default
settings: a commit is flushed to disk) that the bench starts on loopback; ``both``
measures SQLite and MariaDB one after the other for each count, for a ratio from one run.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import KEY, Cluster, wait_until  # noqa: E402
from fanout import rss_kb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def online_count(cluster):
    """From /health: listing 10,000 workers every half second would itself load the master."""
    return cluster.api("GET", "/health", timeout=120)[1].get("workersOnline", 0)   # 0 while standby


def pin_all_threads(pid, cpus):
    """sched_setaffinity for every thread of ``pid`` (threads started later inherit it)."""
    for tid in os.listdir("/proc/%d/task" % pid):
        os.sched_setaffinity(int(tid), cpus)


def cpu_seconds(pid):
    """User + system CPU seconds ``pid`` has used so far."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profile(pid, path):
    """py-spy sampling ``pid`` (all threads, 200 Hz) until stop_profile."""
    return subprocess.Popen([os.environ.get("PY_SPY", "py-spy"), "record", "--pid", str(pid), "--rate", "200",
                             "--format", "raw", "--threads", "--output", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(profiler):
    """Stop py-spy; it writes its file on SIGINT."""
    if profiler is None:
        return
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


def measure(count, plaintext=False, store=None, pin=False, profile=None):
    """One run against ``count`` simulated workers; ``plaintext`` turns the link's TLS off
    (worker_tls: false), to show what TLS costs; ``store`` is extra master settings (a
    store_url and its password file); ``profile``: a path for py-spy's samples of the
    master during the timed fan-outs."""
    settings = dict(log_level="warning", heartbeat_timeout="60s", handshake_timeout="60s",
                    worker_tls=not plaintext, **(store or {}))
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        swarm = None
        try:
            cluster.start_master(**settings)
            if pin:
                pin_all_threads(cluster.master.process.pid, {0})
            started = time.perf_counter()
            swarm = subprocess.Popen((["taskset", "-c", "1"] if pin else []) + [sys.executable, os.path.join(HERE, "swarm.py"), "--port",
                                      str(cluster.worker_port), "--key", KEY, "--count", str(count)]
                                     + (["--plaintext"] if plaintext else []))
            wait_until(lambda: online_count(cluster) == count, timeout=600, interval=0.5, what="swarm online")
            connect_s = time.perf_counter() - started
            rss_mb = rss_kb(cluster.master.process.pid) / 1024
            time.sleep(3)       # idle: the connection storm's garbage may be given back meanwhile
            rss_settled_mb = rss_kb(cluster.master.process.pid) / 1024
            fanouts = []
            profiler = start_profile(cluster.master.process.pid, profile) if profile else None
            if profiler is not None:
                time.sleep(1)       # py-spy attaches
            try:
                cpu_before = cpu_seconds(cluster.master.process.pid)
                for _ in range(3):
                    t0 = time.perf_counter()
                    pool = cluster.run("true", None, wait=300)
                    fanouts.append(time.perf_counter() - t0)
                    assert len(pool["jobs"]) == count and pool["exitCode"] == 0
                fanout_cpu_s = (cpu_seconds(cluster.master.process.pid) - cpu_before) / 3
            finally:
                stop_profile(profiler)
            # Sustained: several pools back to back, results counted over the whole span.
            t0 = time.perf_counter()
            rounds = max(3, 20000 // count)
            results = 0
            for _ in range(rounds):
                results += len(cluster.run("true", None, wait=300)["jobs"])
            rate = results / (time.perf_counter() - t0)
            rss_after_mb = rss_kb(cluster.master.process.pid) / 1024
            cluster.master.stop()
            t0 = time.perf_counter()
            cluster.start_master(**settings)
            if pin:
                pin_all_threads(cluster.master.process.pid, {0})
            wait_until(lambda: online_count(cluster) == count, timeout=600, interval=0.5, what="reconnected")
            reconnect_s = time.perf_counter() - t0
            reconnect_cpu_s = cpu_seconds(cluster.master.process.pid)
            return dict(count=count, connect_s=connect_s, fanout_s=min(fanouts), rate=rate, rss_mb=rss_mb,
                        rss_settled_mb=rss_settled_mb,
                        rss_after_mb=rss_after_mb, reconnect_s=reconnect_s, reconnect_cpu_s=reconnect_cpu_s, fanout_cpu_s=fanout_cpu_s)
        finally:
            if swarm is not None:
                swarm.kill()
                swarm.wait()
            cluster.stop()


class MariaDbStore:
    """A throwaway MariaDB on loopback and a fresh database per run (tests/mariadb.py)."""

    def __init__(self):
        import mariadb
        self.mariadb = mariadb
        self.server, self.base = mariadb.start_throwaway()
        self.runs = 0
        self.password = os.path.join(self.base, "password")
        with open(self.password, "w") as handle:
            handle.write("secret\n")
        os.chmod(self.password, 0o600)

    def settings(self):
        self.runs += 1
        url = self.mariadb.fresh_database(self.server, "pcci_bench_%d" % self.runs)
        return {"store_url": url, "store_password_file": self.password, "lease_time": "10s"}

    def close(self):
        import shutil
        self.server.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def main(arguments):
    store, pin, profile = "sqlite", False, None
    if arguments[:1] == ["--pin"]:
        pin, arguments = True, arguments[1:]
        os.sched_setaffinity(0, {1})
    if arguments[:1] == ["--profile"]:
        profile, arguments = arguments[1], arguments[2:]
    if arguments[:1] == ["--store"]:
        store, arguments = arguments[1], arguments[2:]
    counts = [int(a) for a in arguments] or [1000, 10000]
    kinds = ["sqlite", "mariadb"] if store == "both" else [store]
    database = MariaDbStore() if "mariadb" in kinds else None
    print("store    workers  connect_s  fanout_s (master CPU s)  results/s  master_RSS_MB(all in/3 s later/after)  reconnect_s  (master CPU s)")
    try:
        for count in counts:
            for kind in kinds:
                r = measure(count, store=database.settings() if kind == "mariadb" else None, pin=pin,
                            profile="%s-%d.txt" % (profile, count) if profile else None)
                print("%-7s  %7d  %9.2f  %8.3f (%.2f)  %9.0f  %10.1f / %.1f / %-10.1f  %11.2f  (%.2f)" % (
                    kind, r["count"], r["connect_s"], r["fanout_s"], r["fanout_cpu_s"], r["rate"], r["rss_mb"], r["rss_settled_mb"], r["rss_after_mb"],
                    r["reconnect_s"], r["reconnect_cpu_s"]))
    finally:
        if database is not None:
            database.close()


if __name__ == "__main__":
    main(sys.argv[1:])
