"""The dashboard and /metrics under load: a real master, simulated workers (bench/swarm.py
with a Pi's full stats in each heartbeat), Debian's headless Chromium.

Measures, in one run:
- the dashboard's first view with 500 workers: from navigation to the workers table
  drawn (window.pcciTimings.firstReady), median of 5 loads;
- the master's CPU with 500 workers heartbeating, with no dashboard open and with ten
  open, each in a browser of its own following GET /events, 20 s each: the ratio says
  what dashboards cost;
- GET /metrics with 10,000 workers: the scrape's time (median of 5), and how long a
  GET /health waits meanwhile, against without scrapes.

    python3 bench/dashboard.py [--workers 500] [--dashboards 10] [--metrics-workers 10000]
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import browser  # noqa: E402
from conftest import KEY, Cluster, wait_until  # noqa: E402

SECONDS = 20


@contextlib.contextmanager
def master_and_swarm(count):
    """A master and ``count`` simulated workers, all online with their stats; both stopped after."""
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        swarm = None
        try:
            cluster.start_master(heartbeat_timeout="60s", handshake_timeout="60s", log_level="warning")
            swarm = subprocess.Popen([sys.executable, os.path.join(HERE, "swarm.py"), "--port",
                                      str(cluster.worker_port), "--key", KEY, "--count", str(count), "--full-stats"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(lambda: cluster.api("GET", "/health", timeout=120)[1]["workersOnline"] == count,
                       timeout=900, interval=0.5, what="%d simulated workers online" % count)
            time.sleep(6)       # every worker has sent a heartbeat with its stats
            yield cluster
        finally:
            if swarm:
                swarm.kill()
                swarm.wait()
            cluster.stop()


def cpu_percent(pid, seconds):
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    time.sleep(seconds)
    return 100.0 * (sum(process.cpu_times()[:2]) - before) / seconds


def wait_ready(driver):
    wait_until(lambda: driver.execute_script("return document.body.dataset.ready === 'yes'"), timeout=60,
               what="dashboard ready")


def dashboards(count, workers):
    with master_and_swarm(workers) as cluster:
        driver = None
        others = []
        try:
            url = "http://127.0.0.1:%d/" % cluster.api_port
            driver = browser.start()
            loads = []
            for _ in range(5):
                driver.get("about:blank")
                driver.get(url)
                wait_ready(driver)
                loads.append(driver.execute_script("return window.pcciTimings.firstReady"))
                assert driver.execute_script("return window.pcciTimings.workersShown") == workers
            driver.get("about:blank")
            idle = cpu_percent(cluster.master.process.pid, SECONDS)
            # Ten users, each with a browser of their own (the tabs of one browser share one stream).
            for _ in range(count):
                other = browser.start()
                others.append(other)
                other.get(url)
                wait_ready(other)
            time.sleep(2)
            watched = cpu_percent(cluster.master.process.pid, SECONDS)
            return {"first_view_ms": statistics.median(loads), "first_view_all_ms": [round(x) for x in loads],
                    "cpu_idle": idle, "cpu_with_dashboards": watched}
        finally:
            for other in others:
                other.quit()
            if driver:
                driver.quit()


def metrics(workers):
    with master_and_swarm(workers) as cluster:
        waits, stop = [], threading.Event()

        def probe():
            while not stop.is_set():
                started = time.perf_counter()
                cluster.api("GET", "/health", timeout=60)
                waits.append(time.perf_counter() - started)
                time.sleep(0.02)
        prober = threading.Thread(target=probe)
        prober.start()
        time.sleep(5)
        quiet = sorted(waits)
        waits.clear()
        scrapes, size = [], 0
        for _ in range(5):
            started = time.perf_counter()
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % cluster.api_port, timeout=60) as answer:
                size = len(answer.read())
            scrapes.append(time.perf_counter() - started)
        stop.set()
        prober.join()
        busy = sorted(waits)
        return {"scrape_s": statistics.median(scrapes), "scrapes_s": [round(x, 3) for x in scrapes],
                "bytes": size, "health_quiet_p50_ms": 1000 * quiet[len(quiet) // 2],
                "health_scraping_p50_ms": 1000 * busy[len(busy) // 2], "health_scraping_max_ms": 1000 * busy[-1]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--dashboards", type=int, default=10)
    parser.add_argument("--metrics-workers", type=int, default=10000)
    args = parser.parse_args()
    shown = dashboards(args.dashboards, args.workers)
    print("dashboard, %d workers: first view %.0f ms (median of %s)" % (args.workers, shown["first_view_ms"],
                                                                       shown["first_view_all_ms"]))
    print("master CPU with %d workers heartbeating: %.1f%% without a dashboard, %.1f%% with %d open (x%.2f)"
          % (args.workers, shown["cpu_idle"], shown["cpu_with_dashboards"], args.dashboards,
             shown["cpu_with_dashboards"] / max(shown["cpu_idle"], 0.1)))
    if not args.metrics_workers:
        return
    scraped = metrics(args.metrics_workers)
    print("GET /metrics, %d workers: %.3f s median %s, %d bytes; GET /health p50 %.1f ms quiet, %.1f ms (max %.0f) "
          "while scraping" % (args.metrics_workers, scraped["scrape_s"], scraped["scrapes_s"], scraped["bytes"],
                              scraped["health_quiet_p50_ms"], scraped["health_scraping_p50_ms"],
                              scraped["health_scraping_max_ms"]))


if __name__ == "__main__":
    main()
