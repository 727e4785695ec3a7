"""`pcci copy` and `pcci fetch` in rolling batches (--batch, --max-failures), as `pcci run`
takes them, through a real master and workers."""

import json

from test_cli import pcci


def test_pcci_copy_in_a_batch_of_one_writes_one_worker_at_a_time_and_stops_after_a_failure(cluster, tmp_path):
    cluster.start_master()
    for name in ("pi1", "pi2"):
        cluster.start_worker(name)
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port}
    source = tmp_path / "local.conf"
    source.write_text("setting = on\n")

    done = pcci("copy", str(source), "-w", "pi1,pi2", "--dest", str(tmp_path / "remote.conf"), "--batch", "1",
                "--json", env=env)
    assert done.returncode == 0, done.stderr
    pool = json.loads(done.stdout)
    assert pool["rollout"]["batch"] == 1
    first, second = sorted(pool["jobs"].values(), key=lambda job: job["startTime"])
    assert second["startTime"] >= first["endTime"]          # one at a time
    assert (tmp_path / "remote.conf").read_text() == "setting = on\n"

    refused = pcci("copy", str(source), "-w", "pi1,pi2", "--dest", str(tmp_path / "missing" / "x.conf"),
                   "-f", "1", "--max-failures", "0", env=env)
    assert refused.returncode == 255 and "(failed)" in refused.stdout and "skipped" in refused.stdout, refused


def test_pcci_fetch_in_a_batch_of_one_stops_after_a_failure(cluster, tmp_path):
    cluster.start_master()
    for name in ("pi1", "pi2"):
        cluster.start_worker(name)
    env = {"PCCI_URL": "http://127.0.0.1:%d" % cluster.api_port}
    fetched = pcci("fetch", str(tmp_path / "no-such-file"), "-w", "pi1,pi2", "--dest", str(tmp_path / "into"),
                   "--batch", "1", "--max-failures", "0", "--json", env=env)
    assert fetched.returncode == 255, fetched
    pool = json.loads(fetched.stdout)
    assert pool["rollout"]["batch"] == 1 and pool["rollout"]["maxFailures"] == 0
    assert sorted(job["state"] for job in pool["jobs"].values()) == ["failed", "skipped"]
