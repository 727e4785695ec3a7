"""GET /pool/ID of a finished pool is rendered once and shared by every reader, never stale."""

import psutil

from conftest import wait_until
from idle_readers import open_idle_readers, peak_rss
from pcci.master.pool_renders import PoolRenders
from pcci.model import Job, Pool
from pcci.states import JobState, PoolStatus

# Large enough that an answer does not fit the kernel's send buffer (4 MB on loopback):
# the rest waits in the master's memory while the reader does not read.
READERS = 60
OUTPUT = 6 * 1024 * 1024


def pool_of(state, end_time=2000):
    job = Job("p1", "n1", state=state, exit_code=0 if state is JobState.SUCCEEDED else None, stdout="out",
              end_time=end_time if state is not JobState.RUNNING else None)
    pool = Pool("p1", "echo out", 1000, {"n1": job})
    assert pool.status is (PoolStatus.RUNNING if state is JobState.RUNNING else PoolStatus.DONE)
    return pool


def test_a_finished_pool_is_rendered_once_a_running_one_each_time():
    renders = PoolRenders()
    finished = pool_of(JobState.SUCCEEDED)
    first = renders.body(finished, True, lambda: b"x" * 10)
    assert renders.body(finished, True, lambda: b"never called") is first
    assert renders.body(finished, False, lambda: b"without env values") == b"without env values"   # its own variant
    running = pool_of(JobState.RUNNING)
    assert renders.body(running, True, lambda: b"a") == b"a" and renders.body(running, True, lambda: b"b") == b"b"


def test_a_running_pool_is_shared_per_live_version_and_rendered_again_when_it_moves():
    renders = PoolRenders()
    running = pool_of(JobState.RUNNING)
    assert renders.body(running, True, lambda: b"v1", ("g", 7)) == b"v1"
    assert renders.body(running, True, lambda: b"never called", ("g", 7)) == b"v1"
    assert renders.body(running, True, lambda: b"v2", ("g", 8)) == b"v2"        # more output came


def test_a_finished_pool_that_changes_is_rendered_again():
    renders = PoolRenders()
    pool = pool_of(JobState.LOST)
    assert renders.body(pool, True, lambda: b"lost") == b"lost"
    pool.jobs["n1"].state, pool.jobs["n1"].exit_code = JobState.SUCCEEDED, 0     # a late result corrects it
    assert renders.body(pool, True, lambda: b"succeeded") == b"succeeded"


def test_the_cache_holds_a_bounded_number_of_bytes_oldest_out_first():
    renders = PoolRenders(max_bytes=100)
    pools = []
    for number in range(6):
        pool = pool_of(JobState.SUCCEEDED)
        pool.pool_id = "p%d" % number
        pools.append(pool)
        renders.body(pool, True, lambda: b"y" * 20)
    assert renders.size <= 100 and len(renders.entries) == 5
    assert renders.body(pools[0], True, lambda: b"again") == b"again"          # the oldest went first
    assert renders.body(pools[5], True, lambda: b"z" * 30) == b"y" * 20           # the newest is kept
    big = PoolRenders(max_bytes=100)
    big.body(pools[1], True, lambda: b"b" * 26)                                  # over a quarter: not kept
    assert big.size == 0


def test_idle_readers_of_a_finished_pool_share_one_rendering(cluster):
    cluster.start_master(api_max_connections_per_address=READERS + 20, max_frame_bytes=16 * OUTPUT)
    cluster.start_worker("pi1", output_cap_bytes=OUTPUT + (1 << 20), max_frame_bytes=16 * OUTPUT)
    pool = cluster.run("head -c %d /dev/zero | tr '\\0' x | fold -w 99" % OUTPUT, workers=["pi1"])
    path = "/pool/%s" % pool["id"]
    before = psutil.Process(cluster.master.process.pid).memory_info().rss
    idle = []
    try:
        idle = open_idle_readers(cluster, path, READERS)
        peak = peak_rss(cluster.master.process.pid, before)
        assert cluster.api("GET", "/health")[0] == 200
        # A rendering each held ~2 MB a reader past the send buffer here (over 120 MB); one
        # shared rendering leaves the readers a few MB between them.
        assert peak - before < READERS * 512 * 1024, (before, peak)
    finally:
        for sock in idle:
            sock.close()
    again = cluster.api("GET", path)[1]
    assert again["jobs"]["pi1"]["stdout"] == pool["jobs"]["pi1"]["stdout"] and len(again["jobs"]["pi1"]["stdout"]) > OUTPUT
    wait_until(lambda: cluster.api("GET", "/health")[0] == 200, what="the master serving")
