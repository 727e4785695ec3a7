"""Idle followers: N sockets follow a pool's event stream and never read.

Run by hand: python3 bench/idle_followers.py [N] [--cluster | --get]   (default N: 1000).
A real master and worker on loopback; one job prints 4 MiB and then waits, so its pool
stays running with 4 MiB of output in its log. N sockets (SO_RCVBUF 4 KiB) connect, send
``GET /pool/ID/events`` (or ``GET /events`` with --cluster, ``GET /pool/ID`` with --get)
and never read. Prints the
master's RSS (psutil) before, at its peak while they hang, and 10 s after they close.
"""

import os
import socket
import sys
import tempfile
import time

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from conftest import Cluster, wait_until  # noqa: E402

OUTPUT_BYTES = 4 * 1024 * 1024
SETTLE_SECONDS = 40


def rss_mb(process):
    return process.memory_info().rss / 1e6


def open_followers(port, token, path, count):
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n" % (path, token)).encode()
    followers = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        followers.append(sock)
    return followers


def main(count, path_kind):
    with tempfile.TemporaryDirectory() as base:
        cluster = Cluster(base)
        flag = os.path.join(base, "go")
        try:
            cluster.start_master(log_level="warning", api_max_connections=count + 50,
                                 api_max_connections_per_address=count + 50, max_frame_bytes=64 << 20)
            cluster.start_worker("w1", log_level="warning", output_cap_bytes=OUTPUT_BYTES + (1 << 20),
                                 max_frame_bytes=64 << 20)
            cmd = ("head -c %d /dev/zero | tr '\\0' x | fold -w 99; while [ ! -e %s ]; do sleep 0.2; done"
                   % (OUTPUT_BYTES * 99 // 100, flag))
            status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": ["w1"]})
            assert status == 202, submitted
            pool_id = submitted["id"]
            wait_until(lambda: len(cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]["w1"]["stdout"])
                       >= OUTPUT_BYTES * 99 // 100, timeout=60, what="4 MiB of live output")
            master = psutil.Process(cluster.master.process.pid)
            time.sleep(2)
            before = rss_mb(master)
            path = {"cluster": "/events", "pool": "/pool/%s/events" % pool_id, "get": "/pool/%s" % pool_id}[path_kind]
            started = time.monotonic()
            followers = open_followers(cluster.api_port, cluster.token, path, count)
            peak, last, steady = before, 0.0, 0
            deadline = time.monotonic() + SETTLE_SECONDS
            while time.monotonic() < deadline and steady < 5:
                time.sleep(1)
                now = rss_mb(master)
                peak = max(peak, now)
                steady = steady + 1 if abs(now - last) < 1 else 0
                last = now
            opened = time.monotonic() - started
            alive = cluster.api("GET", "/health")[0]
            for sock in followers:
                sock.close()
            time.sleep(10)
            after = rss_mb(master)
            print("%d idle followers of %s (%d MiB of output): master RSS before %.0f MB, peak %.0f MB, "
                  "10 s after they closed %.0f MB; /health while they hung: %s; %.0f s to settle"
                  % (count, path, OUTPUT_BYTES >> 20, before, peak, after, alive, opened))
        finally:
            open(flag, "w").close()
            cluster.stop()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 1000,
         "cluster" if "--cluster" in sys.argv else "get" if "--get" in sys.argv else "pool")
