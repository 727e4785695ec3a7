"""Retiring a worker that will not return: DELETE /workers/NAME and pcci workers --forget,
on a real master with real workers."""

import os
import subprocess
import sys

from conftest import REPO, wait_until
from events import Follower

ADMIN = "admin-token-" + "f" * 24
OPERATOR = "operator-token-" + "o" * 24
TOKENS = [{"name": "admin", "scope": "admin", "token": ADMIN}, {"name": "ops", "scope": "operate", "token": OPERATOR}]


def names(cluster):
    return [w["name"] for w in cluster.api("GET", "/workers")[1]["workers"]]


def pcci(cluster, *args):
    env = dict(os.environ, PYTHONPATH=REPO, PCCI_URL="http://127.0.0.1:%d" % cluster.api_port, PCCI_TOKEN=ADMIN)
    return subprocess.run([sys.executable, "-m", "pcci", *args], capture_output=True, text=True, env=env, timeout=60)


def test_a_retired_worker_is_gone_for_good_and_its_history_stays(cluster):
    cluster.start_master(api_tokens=TOKENS)
    cluster.start_worker("pi1")
    cluster.start_worker("pi2")
    pool = cluster.run("echo from $(hostname)", ["pi1", "pi2"])
    follower = Follower(cluster, "/events")

    # Connected: refused, with who and from where.
    status, body = cluster.api("DELETE", "/workers/pi2")
    assert status == 409 and body["error"]["code"] == "worker_online" and "127.0.0.1" in body["error"]["message"]
    # Not everyone may retire workers.
    status, body = cluster.api("DELETE", "/workers/pi2", token=OPERATOR)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    assert cluster.api("DELETE", "/workers/nosuch")[1]["error"]["code"] == "unknown_worker"

    cluster.workers["pi2"].stop()
    wait_until(lambda: not [w for w in cluster.api("GET", "/workers")[1]["workers"] if w["name"] == "pi2"
                            and w["online"]], what="pi2 offline")
    assert cluster.api("DELETE", "/workers/pi2") == (200, {"name": "pi2", "forgotten": True})
    assert names(cluster) == ["pi1"]
    wait_until(lambda: [data for _, kind, data, _ in follower.events if kind == "worker_forgotten"] == [{"name": "pi2"}],
               what="the worker_forgotten event")
    follower.close()
    assert "DELETE /workers/pi2 by admin" in cluster.master.log()         # audited

    # A restart does not bring it back; its pool's history is whole.
    cluster.master.stop()
    cluster.start_master(api_tokens=TOKENS)
    assert names(cluster) == ["pi1"]
    kept = cluster.api("GET", "/pool/%s" % pool["id"])[1]
    assert kept["jobs"]["pi2"]["stdout"] == pool["jobs"]["pi2"]["stdout"]

    # Should it return after all, it registers again, as new.
    cluster.start_worker("pi2")
    assert names(cluster) == ["pi1", "pi2"]


def test_the_cli_forgets_and_says_why_it_will_not(cluster):
    cluster.start_master(api_tokens=TOKENS)
    cluster.start_worker("pi1")
    refused = pcci(cluster, "workers", "--forget", "pi1")
    assert refused.returncode != 0 and "pi1 is connected" in refused.stderr
    cluster.workers["pi1"].stop()
    wait_until(lambda: not cluster.api("GET", "/workers")[1]["workers"][0]["online"], what="pi1 offline")
    done = pcci(cluster, "workers", "--forget", "pi1")
    assert done.returncode == 0 and done.stdout == "forgot worker pi1\n"
    assert names(cluster) == []
