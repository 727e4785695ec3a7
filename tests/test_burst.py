"""A burst of submissions against a real master and two real workers (issue 9, defect 3).

Observed before: four clients for 10 s got thousands of jobs accepted, then workers
were dropped for silence, jobs ended `succeeded` with their output missing, `lost`, or
`failed` with "Too many open files". Now the master pushes back (429) when a worker
has a full backlog, the workers run at most max_jobs at once, and every accepted job
must end with its exact output while no worker goes offline.
"""

from burst import run_burst


def test_a_burst_of_submissions_loses_no_output_and_drops_no_worker(cluster):
    cluster.start_master(heartbeat_timeout="15s", log_level="info", max_worker_backlog=300)
    for name in ("pi1", "pi2"):
        cluster.start_worker(name, heartbeat_interval="5s", link_timeout="20s", log_level="info")
    connected = {w["name"]: w["connectedSince"] for w in cluster.api("GET", "/workers")[1]["workers"]}
    outcome = run_burst(cluster, ["pi1", "pi2"], clients=4, seconds=8)
    assert outcome["errors"] == [] and outcome["wrong"] == []
    assert outcome["accepted"] > 100
    workers = cluster.api("GET", "/workers")[1]["workers"]
    assert {w["name"]: w["connectedSince"] for w in workers} == connected     # never dropped
    assert all(w["online"] for w in workers)
    assert "offline" not in cluster.master.log()
