"""Live output with real processes: a job's lines reach an SSE follower while it runs,
resuming loses and repeats nothing, a late follower gets everything, a cut link ends
with the whole output, and a job far faster than its link does not swell the worker."""

import os
import time

import psutil

from conftest import wait_until
from events import Follower
from linkproxy import LinkProxy


def started(cluster, cmd, workers):
    status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": workers})
    assert status == 202, submitted
    return submitted["id"]


def gated(tmp_path, before, after, name="go"):
    """A command printing `before`, waiting until the test creates a file, then printing `after`."""
    flag = tmp_path / name
    return flag, ("printf '%s'; while [ ! -e %s ]; do sleep 0.05; done; printf '%s'" % (before, flag, after))


def test_a_follower_sees_each_line_before_the_job_that_printed_it_ends(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    flag, cmd = gated(tmp_path, "first line\\n", "second line\\nno newline")
    pool_id = started(cluster, cmd, ["pi1", "pi2"])
    follower = Follower(cluster, "/pool/%s/events" % pool_id)
    try:
        wait_until(lambda: follower.text("pi1") == "first line\n" and follower.text("pi2") == "first line\n",
                   what="the first line of both jobs, live")
        pool = cluster.api("GET", "/pool/%s" % pool_id)[1]
        assert pool["status"] == "running"
        assert {name: job["stdout"] for name, job in pool["jobs"].items()} == {"pi1": "first line\n",
                                                                                "pi2": "first line\n"}
        flag.touch()
        assert follower.ended.wait(20), follower.kinds()
        assert follower.kinds()[-1] == "done"
        final = cluster.api("GET", "/pool/%s" % pool_id)[1]
        for name in ("pi1", "pi2"):
            assert follower.text(name) == final["jobs"][name]["stdout"] == "first line\nsecond line\nno newline"
        ended = [data for _, kind, data, _ in follower.events if kind == "job" and data["state"] == "succeeded"]
        assert sorted(data["worker"] for data in ended) == ["pi1", "pi2"]
    finally:
        flag.touch()
        follower.close()


def test_resuming_with_last_event_id_gives_every_byte_once(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    flags = [tmp_path / ("step%d" % n) for n in range(3)]
    cmd = "; ".join("echo 'part %d'; echo 'err %d' >&2; while [ ! -e %s ]; do sleep 0.05; done" % (n, n, flag)
                    for n, flag in enumerate(flags)) + "; echo end"
    pool_id = started(cluster, cmd, ["pi1"])
    first = Follower(cluster, "/pool/%s/events" % pool_id)
    wait_until(lambda: first.text("pi1") == "part 0\n" and first.text("pi1", "stderr") == "err 0\n",
               what="the first part")
    first.close()
    resume_at = first.last_id()
    flags[0].touch()
    flags[1].touch()
    wait_until(lambda: "part 2" in cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]["pi1"]["stdout"],
               what="more output while nobody follows")
    second = Follower(cluster, "/pool/%s/events" % pool_id, last_event_id=resume_at)
    # ?since= does the same for clients that cannot set a header.
    third = Follower(cluster, "/pool/%s/events?since=%s" % (pool_id, resume_at))
    try:
        flags[2].touch()
        assert second.ended.wait(20) and third.ended.wait(20)
        final = cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]["pi1"]
        for later in (second, third):
            assert "reset" not in later.kinds()
            assert [kind for kind in later.kinds() if kind == "done"] == ["done"]
            pieces = [data for _, kind, data, _ in first.events + later.events if kind == "output"]
            for stream in ("stdout", "stderr"):
                text = "".join(p["text"] for p in pieces if p["stream"] == stream)
                assert text == final[stream]
            assert final["stdout"] == "part 0\npart 1\npart 2\nend\n"
    finally:
        second.close()
        third.close()


def test_a_follower_of_an_ended_pool_gets_everything_at_once(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    pool = cluster.run("seq 1 2000; echo oops >&2; exit 3", ["pi1"])
    started_at = time.monotonic()
    follower = Follower(cluster, "/pool/%s/events" % pool["id"])
    assert follower.ended.wait(10)
    assert time.monotonic() - started_at < 5
    assert follower.text("pi1") == pool["jobs"]["pi1"]["stdout"] == "".join("%d\n" % n for n in range(1, 2001))
    assert follower.text("pi1", "stderr") == "oops\n"
    assert follower.kinds()[-1] == "done" and follower.events[-1][2]["exitCode"] == 3
    # A bad id is the client's error, said as such; an unknown pool is a 404 as everywhere.
    assert cluster.api("GET", "/pool/%s/events?since=nonsense" % pool["id"])[0] == 400
    assert cluster.api("GET", "/pool/01a22c4f-04f7-7247-87f1-e72b65698af5/events")[0] == 404


def test_a_link_cut_mid_job_ends_with_the_whole_output_once(cluster, tmp_path):
    cluster.start_master()
    proxy = LinkProxy(cluster.worker_port)
    try:
        cluster.start_worker("pi1", master_port=proxy.port)
        flag, cmd = gated(tmp_path, "before the cut\\n", "after the cut\\n")
        cmd = cmd.replace("; printf 'after", "; printf 'while cut\\n'; while [ ! -e %s.2 ]; do sleep 0.05; done; "
                                             "printf 'after" % flag)
        pool_id = started(cluster, cmd, ["pi1"])
        follower = Follower(cluster, "/pool/%s/events" % pool_id)
        wait_until(lambda: follower.text("pi1") == "before the cut\n", what="live output before the cut")
        proxy.cut()
        flag.touch()                        # "while cut" is printed while the link is down
        time.sleep(1.0)
        proxy.restore()
        # After the reconnect the worker sends, from where the master's copy ends, what it lost.
        wait_until(lambda: follower.text("pi1") == "before the cut\nwhile cut\n", timeout=20,
                   what="the output printed during the cut, live after the reconnect")
        assert cluster.api("GET", "/pool/%s" % pool_id)[1]["status"] == "running"
        (tmp_path / "go.2").touch()
        assert follower.ended.wait(30)
        final = cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]["pi1"]
        assert final["state"] == "succeeded"
        assert follower.text("pi1") == final["stdout"] == "before the cut\nwhile cut\nafter the cut\n"
        follower.close()
    finally:
        proxy.close()


def test_a_job_writing_far_faster_than_its_link_neither_waits_nor_swells_the_worker(cluster, tmp_path):
    cap = 32 * 1024 * 1024
    frame = 12 * cap + (1 << 20)
    cluster.start_master(max_frame_bytes=frame)
    proxy = LinkProxy(cluster.worker_port)
    try:
        worker = cluster.start_worker("pi1", master_port=proxy.port, output_cap_bytes=cap, max_frame_bytes=frame)
        process = psutil.Process(worker.process.pid)
        baseline = process.memory_info().rss
        proxy.shape(delay=0.05)             # about 1 MB/s
        written = tmp_path / "written"
        flag = tmp_path / "go"
        cmd = ("head -c %d /dev/zero | tr '\\0' x; touch %s; while [ ! -e %s ]; do sleep 0.05; done"
               % (3 * cap, written, flag))
        pool_id = started(cluster, cmd, ["pi1"])
        follower = Follower(cluster, "/pool/%s/events" % pool_id, timeout=120)
        try:
            # The job wrote three times its cap at once: nothing made it wait for the link.
            wait_until(lambda: written.exists(), timeout=30, what="the job done writing")
            peak = baseline
            for _ in range(20):
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.1)
            live = len(follower.text("pi1"))
            assert 0 < live < cap, "the live view lags behind the job"
            # The cap's worth of output is kept once; the link's queue stays small.
            assert peak - baseline < cap + 16 * 1024 * 1024, (peak - baseline) / 2 ** 20
            proxy.shape()
            flag.touch()
            assert follower.ended.wait(90)
            job = cluster.api("GET", "/pool/%s?wait=30" % pool_id, timeout=120)[1]["jobs"]["pi1"]
            assert job["state"] == "succeeded" and job["stdoutTruncated"] is True
            assert len(job["stdout"]) == cap
            assert follower.text("pi1") == job["stdout"]
        finally:
            flag.touch()
            follower.close()
    finally:
        proxy.close()


def test_the_cluster_stream_shows_workers_and_pools(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    follower = Follower(cluster, "/events")
    try:
        wait_until(lambda: any(kind == "worker" and data["name"] == "pi1" for _, kind, data, _ in follower.events),
                   what="pi1 in the snapshot")
        pool = cluster.run("true", ["pi1"])
        wait_until(lambda: [data["status"] for _, kind, data, _ in follower.events
                            if kind == "pool" and data["id"] == pool["id"]] == ["running", "done"],
                   what="the pool created and ended")
        cluster.start_worker("pi2")
        wait_until(lambda: any(kind == "worker" and data["name"] == "pi2" and data["online"] and event_id
                               for event_id, kind, data, _ in follower.events), what="pi2 coming online")
        resume_at = follower.last_id()
    finally:
        follower.close()
    cluster.workers["pi2"].stop()
    later = Follower(cluster, "/events", last_event_id=resume_at)
    try:
        wait_until(lambda: any(kind == "worker" and data["name"] == "pi2" and not data["online"]
                               for _, kind, data, _ in later.events), what="pi2 going offline")
        assert all(event_id for event_id, _, _, _ in later.events), "a resumed stream sends no snapshot"
    finally:
        later.close()
    assert os.path.exists(cluster.master.log_path)


def test_after_a_master_restart_a_running_jobs_output_is_whole_again(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1")
    flag, cmd = gated(tmp_path, "before the restart\\n", "after it\\n")
    pool_id = started(cluster, cmd, ["pi1"])
    before = Follower(cluster, "/pool/%s/events" % pool_id)
    wait_until(lambda: before.text("pi1") == "before the restart\n", what="live output")
    resume_at = before.last_id()
    before.close()
    cluster.master.stop()
    cluster.start_master()
    cluster.wait_online("pi1")
    # The new master asks the worker for the output from the start; an id from the old
    # master's log is answered with a reset and the whole stream.
    after = Follower(cluster, "/pool/%s/events" % pool_id, last_event_id=resume_at)
    try:
        wait_until(lambda: after.text("pi1") == "before the restart\n", timeout=15,
                   what="the output from before the restart, live again")
        assert after.kinds()[0] == "reset"
        assert cluster.api("GET", "/pool/%s" % pool_id)[1]["jobs"]["pi1"]["stdout"] == "before the restart\n"
        flag.touch()
        assert after.ended.wait(20)
        assert after.text("pi1") == "before the restart\nafter it\n"
    finally:
        flag.touch()
        after.close()
