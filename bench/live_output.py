"""Live output: line latency from a job's write to an SSE follower's read, and the
throughput of one job's output to a follower, with the processes' memory.

    python3 bench/live_output.py [--workers 50] [--seconds 8] [--megabytes 200]

* latency: N local workers each run a job printing its clock ($EPOCHREALTIME, bash)
  every 100 ms; one follower of the pool's GET /pool/ID/events takes, for every line
  it reads, its own clock minus the printed one (one machine, one clock). p50 and p99.
* throughput: one job writes MEGABYTES of 'x' to stdout as fast as `tr` can, with
  output_cap_bytes large enough to keep it all (and max_frame_bytes to carry that as
  one result); the follower reads it all. MB/s from the first byte read to the last,
  how much of it came live (before the job's result), and the peak RSS of the worker
  and the master, against the 1.2 x output_cap_bytes + 30 MB target (issue 26).
Real master and worker processes on loopback (the test suite's Cluster helper).
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from conftest import Cluster  # noqa: E402
from latency import percentile  # noqa: E402

from pcci.client.events import parse_events  # noqa: E402
from pcci.worker.live_output import PIECE_BYTES  # noqa: E402


def events(cluster, pool_id):
    """(kind, data) of the pool's event stream, as they arrive, until it ends."""
    connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=120)
    connection.request("GET", "/pool/%s/events" % pool_id)
    response = connection.getresponse()
    assert response.status == 200, response.read()
    for _, kind, data in parse_events(response):
        yield kind, json.loads(data)
    connection.close()


def submit(cluster, cmd, workers):
    status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": workers})
    assert status == 202, submitted
    return submitted["id"]


def line_latency(count, seconds):
    lines = int(seconds * 10)
    # read -t on a pipe nothing writes to: a 100 ms pause without a process per line.
    cmd = ("exec 3< <(sleep %d); for i in $(seq %d); do echo $EPOCHREALTIME; read -t 0.1 -u 3; done; true"
           % (seconds + 30, lines))
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="warning", heartbeat_timeout="30s")
            names = ["w%02d" % n for n in range(count)]
            for name in names:
                cluster.start_worker(name, wait=False, log_level="warning", shell="/bin/bash",
                                     heartbeat_interval="5s", link_timeout="20s")
            cluster.wait_online(*names, timeout=120)
            pool_id = submit(cluster, cmd, names)
            samples, partial = [], {}
            for kind, data in events(cluster, pool_id):
                if kind != "output" or data["stream"] != "stdout":
                    continue
                now = time.time()
                text = partial.pop(data["worker"], "") + data["text"]
                *whole, rest = text.split("\n")
                if rest:
                    partial[data["worker"]] = rest
                samples += [now - float(line) for line in whole if line]
            pool = cluster.api("GET", "/pool/%s" % pool_id)[1]
            assert pool["exitCode"] == 0, pool["states"]
            return samples, count * lines
        finally:
            cluster.stop()


def throughput(megabytes):
    total = megabytes * 1000 * 1000
    cap = total + 1024 * 1024
    frame = 12 * cap + 2 * 1024 * 1024      # config's worst case: every byte a \u00XX escape
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        try:
            cluster.start_master(log_level="warning", max_frame_bytes=frame)
            worker = cluster.start_worker("pi1", log_level="warning", output_cap_bytes=cap, max_frame_bytes=frame)
            processes = {"worker": psutil.Process(worker.process.pid),
                         "master": psutil.Process(cluster.master.process.pid)}
            baseline = {name: p.memory_info().rss for name, p in processes.items()}
            peak = dict(baseline)
            sampling = threading.Event()

            def sample():
                while not sampling.is_set():
                    for name, process in processes.items():
                        peak[name] = max(peak[name], process.memory_info().rss)
                    time.sleep(0.02)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # The job stays a while after writing, so the memory while output streams is apart
            # from the memory while its result is built, sent and stored.
            pool_id = submit(cluster, "head -c %d /dev/zero | tr '\\0' x; sleep 3" % total, ["pi1"])
            received, piece, first, last = 0, 0, None, None
            streaming_peak = None
            for kind, data in events(cluster, pool_id):
                if kind == "output":
                    piece = len(data["text"])
                    received += piece
                    first = first or time.perf_counter()
                    last = time.perf_counter()
                    if received == total and streaming_peak is None:
                        streaming_peak = dict(peak)   # all of it live: the result is not built yet
                elif kind == "job" and data["state"] != "running":
                    # The result's arrival adds what the pieces lacked as one larger event.
                    live = received - (piece if piece > PIECE_BYTES else 0)
            sampling.set()
            sampler.join()
            assert received == total, received
            return dict(mb_s=total / 1e6 / (last - first), live=live / total, cap_mb=cap / 2 ** 20,
                        rss={name: (baseline[name] / 2 ** 20, (streaming_peak or peak)[name] / 2 ** 20,
                                    peak[name] / 2 ** 20) for name in processes})
        finally:
            cluster.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    samples, expected = line_latency(args.workers, args.seconds)
    print("line latency, %d workers, a line every 100 ms for %d s: %d of %d lines  p50 %.1f ms  p90 %.1f ms  "
          "p99 %.1f ms  max %.1f ms" % (args.workers, args.seconds, len(samples), expected,
                                       percentile(samples, 0.5) * 1000, percentile(samples, 0.9) * 1000,
                                       percentile(samples, 0.99) * 1000, max(samples) * 1000))
    sys.stdout.flush()
    result = throughput(args.megabytes)
    target = 1.2 * result["cap_mb"] + 30
    print("throughput, %d MB from one job: %.1f MB/s to the follower, %.0f%% of it live\n"
          "RSS MB (start / peak while streaming / peak with the result): worker %.0f / %.0f / %.0f, "
          "master %.0f / %.0f / %.0f (target: each under 1.2 x cap + 30 = %.0f)"
          % (args.megabytes, result["mb_s"], result["live"] * 100, *result["rss"]["worker"],
             *result["rss"]["master"], target))


if __name__ == "__main__":
    main()
