"""Rolling batches and queueing for offline workers, with real processes: at most N jobs
at once (checked from the times the jobs themselves wrote), no new job past maxFailures,
a half-done rollout that survives a master SIGKILL, and jobs that wait for their worker."""

import os

from conftest import wait_until

NAMES = ["pi%d" % n for n in range(1, 7)]


def submit(cluster, cmd, workers, **options):
    status, submitted = cluster.api("POST", "/job", dict(options, cmd=cmd, workers=workers))
    assert status == 202, submitted
    return submitted["id"]


def intervals(directory):
    """(start, end) of each job, as the job wrote them."""
    spans = []
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as handle:
            start, end = handle.read().split()
        spans.append((float(start), float(end)))
    return spans


def most_at_once(spans):
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def timed_job(directory, seconds=0.4):
    return ('s=$(date +%%s.%%N); sleep %s; echo "$s $(date +%%s.%%N)" > %s/$PCCI_JOB_ID_SAFE'
            % (seconds, directory)).replace("$PCCI_JOB_ID_SAFE", "$(hostname)-$$")


def test_a_batch_of_2_over_6_workers_never_runs_more_than_2_at_once(cluster, tmp_path):
    cluster.start_master()
    for name in NAMES:
        cluster.start_worker(name, wait=False)
    cluster.wait_online(*NAMES)
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    pool_id = submit(cluster, timed_job(spans_dir), NAMES, batch=2)
    pool = cluster.api("GET", "/pool/%s?wait=60" % pool_id)[1]
    assert pool["status"] == "done" and pool["states"] == {"succeeded": 6}
    assert pool["rollout"]["batch"] == 2
    spans = intervals(spans_dir)
    assert len(spans) == 6 and most_at_once(spans) == 2
    # The same six without a batch overlap freely: the measure can see more than two.
    free_dir = tmp_path / "free"
    free_dir.mkdir()
    cluster.api("GET", "/pool/%s?wait=60" % submit(cluster, timed_job(free_dir, 1.0), NAMES))
    assert most_at_once(intervals(free_dir)) > 2


def test_past_max_failures_the_rollout_stops_and_the_rest_are_skipped(cluster, tmp_path):
    cluster.start_master()
    for name in NAMES[:5]:
        cluster.start_worker(name, wait=False)
    cluster.wait_online(*NAMES[:5])
    ran = tmp_path / "ran"
    ran.mkdir()
    pool_id = submit(cluster, "touch %s/$(hostname)-$$; exit 1" % ran, NAMES[:5], batch=1, maxFailures=1)
    pool = cluster.api("GET", "/pool/%s?wait=60" % pool_id)[1]
    states = [pool["jobs"][name]["state"] for name in NAMES[:5]]
    assert states == ["failed", "failed", "skipped", "skipped", "skipped"]
    assert len(os.listdir(ran)) == 2                    # the skipped ones never ran
    assert pool["jobs"]["pi3"]["exitCode"] is None and pool["jobs"]["pi3"]["startTime"] is None


def test_a_rollout_half_done_when_the_master_is_killed_resumes_and_runs_each_job_once(cluster, tmp_path):
    cluster.start_master()
    names = NAMES[:4]
    for name in names:
        cluster.start_worker(name, wait=False)
    cluster.wait_online(*names)
    ran = tmp_path / "ran"
    ran.mkdir()
    pool_id = submit(cluster, "touch %s/${PCCI_JOB_ID##*/}-$$; sleep 1" % ran, names, batch=1)
    wait_until(lambda: len(os.listdir(ran)) == 2, timeout=30, what="the rollout half done")
    cluster.master.kill()                               # SIGKILL, mid-rollout
    cluster.start_master()
    pool = cluster.api("GET", "/pool/%s?wait=60" % pool_id, timeout=90)[1]
    assert pool["status"] == "done" and pool["states"] == {"succeeded": 4}, pool["states"]
    assert sorted(name.split("-")[0] for name in os.listdir(ran)) == names      # each once
    starts = sorted(pool["jobs"][name]["startTime"] for name in names)
    assert starts == [pool["jobs"][name]["startTime"] for name in names]        # in order


def test_a_queued_job_starts_when_its_worker_comes_back_and_times_out_when_it_does_not(cluster):
    cluster.start_master()
    for name in ("pi1", "pi2", "pi3"):
        cluster.start_worker(name)
    cluster.workers["pi2"].stop()
    cluster.workers["pi3"].stop()
    wait_until(lambda: [w["name"] for w in cluster.api("GET", "/workers")[1]["workers"] if w["online"]] == ["pi1"],
               what="pi2 and pi3 offline")
    waiting = submit(cluster, "echo came back", ["pi1", "pi2"], offline="queue")
    timing_out = submit(cluster, "true", ["pi3"], offline="queue", queueTimeout=1)
    pool = cluster.api("GET", "/pool/%s" % waiting)[1]
    assert pool["jobs"]["pi1"]["state"] == "succeeded" or pool["jobs"]["pi1"]["state"] == "running"
    assert pool["jobs"]["pi2"]["state"] == "queued"
    assert cluster.api("GET", "/pool/%s?wait=15" % timing_out)[1]["jobs"]["pi3"]["state"] == "offline"
    cluster.start_worker("pi2")
    pool = cluster.api("GET", "/pool/%s?wait=30" % waiting)[1]
    assert pool["jobs"]["pi2"]["state"] == "succeeded" and pool["jobs"]["pi2"]["stdout"] == "came back\n"
    # Without queueing, an offline worker's job ends offline at once, as it always did.
    assert cluster.run("true", ["pi3"])["jobs"]["pi3"]["state"] == "offline"


def test_the_cli_runs_a_rolling_batch_and_refuses_a_bad_batch_size(cluster):
    from test_cli import pcci
    cluster.start_master()
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port}
    done = pcci("run", "-w", "pi[1-2]", "--batch", "1", "--max-failures", "0", "--", "exit 1", env=env)
    assert "pi1 (exit 1)" in done.stdout and "pi2 (skipped)" in done.stdout
    assert done.returncode == 255                       # a node never ran it
    bad = pcci("run", "-a", "--batch", "lots", "--", "true", env=env)
    assert bad.returncode == 2 and "--batch takes a number of jobs or a percentage" in bad.stderr
