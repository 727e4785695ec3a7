"""Followers that never read cost the master a bounded number of bytes each, the master
keeps serving meanwhile, and a follower after them still gets every byte (real master
and worker processes, real sockets). The memory target itself is in bench/idle_followers.py."""

import psutil

from conftest import wait_until
from events import Follower
from idle_readers import open_idle_readers, peak_rss
from pcci.master.memory_release import Releaser

FOLLOWERS = 150
OUTPUT = 900 * 1024


def test_idle_followers_of_a_large_pool_cost_little_and_the_next_follower_gets_everything(cluster, tmp_path):
    cluster.start_master(api_max_connections_per_address=FOLLOWERS + 20)
    cluster.start_worker("pi1")
    flag = tmp_path / "go"
    cmd = "head -c %d /dev/zero | tr '\\0' x | fold -w 99; while [ ! -e %s ]; do sleep 0.1; done" % (OUTPUT, flag)
    status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": ["pi1"]})
    assert status == 202
    path = "/pool/%s/events" % submitted["id"]
    wait_until(lambda: len(cluster.api("GET", path[:-7])[1]["jobs"]["pi1"]["stdout"]) >= OUTPUT, what="live output")
    before = psutil.Process(cluster.master.process.pid).memory_info().rss
    idle = []
    try:
        idle = open_idle_readers(cluster, path, FOLLOWERS)
        peak = peak_rss(cluster.master.process.pid, before)
        assert cluster.api("GET", "/health")[0] == 200          # serving others meanwhile
        # One rendering each cost ~300 KB a follower here (45 MB); shared bytes and an 8 KiB
        # send budget leave about 5 MB here.
        assert peak - before < FOLLOWERS * 128 * 1024, (before, peak)
    finally:
        for sock in idle:
            sock.close()
    flag.touch()
    follower = Follower(cluster, path)
    try:
        assert follower.ended.wait(30), follower.kinds()
        assert follower.text("pi1") == cluster.api("GET", path[:-7])[1]["jobs"]["pi1"]["stdout"]
    finally:
        follower.close()


def test_the_heap_is_trimmed_once_after_many_readers_leave():
    import gevent
    trims = []
    releaser = Releaser(trims.append, every=3, delay=0.01)
    for _ in range(7):
        releaser.reader_left()
    gevent.sleep(0.05)
    assert trims == [0]                         # leavers while a trim is due join it
    releaser.reader_left()                      # 3 more have left since: one more trim
    gevent.sleep(0.05)
    assert trims == [0, 0]
    assert Releaser(None, every=1).reader_left() is None       # no glibc: nothing to do
