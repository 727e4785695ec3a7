"""A worker with the cluster key that floods the master with frames, faster than the
master handles them, must neither take the master's event loop from the other workers
and the API (session_reader) nor make it hold a reply for each frame it never reads; the
operator is warned of such a flood, and only of a flood, not of a busy honest worker."""

import hashlib
import threading
import time

import psutil
import pytest

from conftest import wait_until
from pcci import framing
from pcci.master.session_reader import FLOOD_SECONDS as WARNED_AFTER, FLOOD_TURNS, is_flood
from raw_worker import RawWorker

HEARTBEAT = b'{"type":"heartbeat","stats":{},"running":[]}'
BATCH = (framing.HEADER.pack(len(HEARTBEAT)) + HEARTBEAT) * 4000
FLOOD_SECONDS = 60
FLOOD_WARNING = "faster than the master handles them"
MB = 1024 * 1024


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


@pytest.mark.slow      # the warning comes after session_reader.FLOOD_SECONDS of flood
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
        # A flood goes on: the operator is told once it has lasted WARNED_AFTER seconds.
        wait_until(lambda: FLOOD_WARNING in cluster.master.log(), timeout=WARNED_AFTER + 30, interval=0.5,
                   what="the flood warning")
        assert thread.is_alive(), "the flood ended before the warning came"
    finally:
        stop.set()
        thread.join(10)
        flooder.close()
    assert cluster.master.log().count(FLOOD_WARNING) == 1
    assert "worker pi1 has sent small messages " + FLOOD_WARNING in cluster.master.log()


def test_a_busy_honest_worker_is_not_warned_of_as_a_flood(cluster, tmp_path):
    """Large results, live output and a fetch's 1 MiB chunks make the reader take turns,
    which is no flood: the warning had come once a session for any of them."""
    cluster.start_master()
    cluster.start_worker("pi1")
    pool = cluster.run("yes x | head -c %d; yes y | head -c %d >&2" % (3 * MB, 3 * MB), workers=["pi1"])
    job = pool["jobs"]["pi1"]
    assert job["state"] == "succeeded" and job["stdoutTruncated"] and job["stderrTruncated"], job
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (16 * MB // 256))
    status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(big)})
    assert status == 202, submitted
    job = cluster.api("GET", "/pool/%s?wait=60" % submitted["id"])[1]["jobs"]["pi1"]
    assert job["state"] == "succeeded" and hashlib.sha256(big.read_bytes()).hexdigest() in job["stdout"], job
    assert FLOOD_WARNING not in cluster.master.log()


def test_only_small_frames_kept_up_past_the_masters_pace_for_long_are_a_flood():
    assert not is_flood(FLOOD_TURNS * 50, WARNED_AFTER / 2)       # a burst: results kept while away
    assert not is_flood(FLOOD_TURNS - 1, WARNED_AFTER * 10)      # a few turns, now and then
    assert is_flood(FLOOD_TURNS, WARNED_AFTER)
    assert not is_flood(FLOOD_TURNS * 2, WARNED_AFTER * 10)     # a long window at a fifth of the rate
    assert is_flood(FLOOD_TURNS * 10, WARNED_AFTER * 10)


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
