"""A worker with the cluster key that floods the master with frames, faster than the
master handles them, must neither take the master's event loop from the other workers
and the API (session_reader) nor make it hold a reply for each frame it never reads."""

import threading
import time

import psutil

from pcci import framing
from raw_worker import RawWorker

HEARTBEAT = b'{"type":"heartbeat","stats":{},"running":[]}'
BATCH = (framing.HEADER.pack(len(HEARTBEAT)) + HEARTBEAT) * 4000
FLOOD_SECONDS = 60


def flood(worker, stop, batches=None):
    """Heartbeats in large batches, never reading the pongs, until told to stop, ``batches``
    are sent, or FLOOD_SECONDS pass."""
    deadline = time.monotonic() + FLOOD_SECONDS
    worker.sock.settimeout(2)
    sent = 0
    while not stop.is_set() and time.monotonic() < deadline and sent != batches:
        try:
            worker.sock.sendall(BATCH)
        except OSError:
            return
        sent += 1


def test_a_flooding_worker_does_not_starve_the_others(cluster):
    cluster.start_master(heartbeat_timeout="30s")
    cluster.start_worker("pi2")
    flooder = RawWorker(cluster.worker_port, "pi1")
    stop = threading.Event()
    thread = threading.Thread(target=flood, args=(flooder, stop), daemon=True)
    try:
        cluster.wait_online("pi1", "pi2")
        thread.start()
        time.sleep(2)       # the flood is under way
        pool = cluster.run("echo hi", workers=["pi2"], wait=20)
        assert pool["jobs"]["pi2"]["state"] == "succeeded", pool
        assert thread.is_alive(), "the flood ended before the job did: nothing was shown"
        assert cluster.api("GET", "/health")[0] == 200
    finally:
        stop.set()
        thread.join(10)
        flooder.close()
    assert "sends messages faster than the master handles them" in cluster.master.log()


def test_heartbeats_never_read_do_not_pile_up_pongs_on_the_master(cluster):
    # 2,000,000 heartbeats: a pong queued for each was about 120 MB on the master.
    cluster.start_master(heartbeat_timeout="60s")
    flooder = RawWorker(cluster.worker_port, "pi1")
    try:
        cluster.wait_online("pi1")
        master = psutil.Process(cluster.master.process.pid)
        before = master.memory_info().rss
        flood(flooder, threading.Event(), batches=500)
        grown = (master.memory_info().rss - before) >> 20
        assert grown < 40, "the master grew by %d MB" % grown
        assert cluster.api("GET", "/health")[0] == 200
    finally:
        flooder.close()
