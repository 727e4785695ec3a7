"""The REST API as a user drives it: real master and worker processes, HTTP on loopback."""

import socket
import urllib.request

import pytest

from conftest import wait_until


@pytest.fixture
def two_workers(cluster):
    cluster.start_master()
    cluster.start_worker("node1")
    cluster.start_worker("node2")
    return cluster


@pytest.fixture
def two_fake_workers(in_process):
    """The master in this process (tests/harness.py), for what only the master decides."""
    master = in_process()
    master.start_worker("node1")
    master.start_worker("node2")
    return master


def test_original_readme_post_job_returns_a_pool_id_at_once(two_workers):
    status, body = two_workers.api("POST", "/job", {"cmd": "sleep 0.5; echo $((6*7))", "workers": ["node1", "node2"]})
    assert status == 202
    assert body["url"] == "/pool/" + body["id"] and body["status"] == "running"
    assert body["jobs"] == {"node1": "running", "node2": "running"}


def test_original_readme_get_pool_gives_every_jobs_result(two_workers):
    pool = two_workers.run("echo out-$PCCI_TEST; echo err >&2; exit 2", ["node1", "node2"], env={"PCCI_TEST": "x"})
    assert pool["status"] == "done" and pool["exitCode"] == 2
    for name in ("node1", "node2"):
        job = pool["jobs"][name]
        assert (job["state"], job["exitCode"], job["stdout"], job["stderr"]) == ("failed", 2, "out-x\n", "err\n")
        assert job["startTime"] <= job["endTime"]
    assert pool["createdTime"] <= pool["startTime"] <= pool["endTime"]


def test_wait_returns_as_soon_as_the_pool_is_done(two_workers):
    status, submitted = two_workers.api("POST", "/job", {"cmd": "sleep 0.3", "workers": ["node1"]})
    status, pool = two_workers.api("GET", "/pool/%s?wait=20" % submitted["id"])
    assert status == 200 and pool["status"] == "done" and pool["jobs"]["node1"]["state"] == "succeeded"


def test_workers_omitted_means_every_online_worker(two_fake_workers):
    two_workers = two_fake_workers
    pool = two_workers.run("true")
    assert sorted(pool["jobs"]) == ["node1", "node2"]


def test_original_readme_get_pools_lists_newest_first_with_paging_and_filter(two_fake_workers):
    two_workers = two_fake_workers
    ids = [two_workers.run("echo %d" % n, ["node1"])["id"] for n in range(3)]
    status, page = two_workers.api("GET", "/pools?limit=2")
    assert status == 200 and [p["id"] for p in page["pools"]] == ids[::-1][:2]
    status, rest = two_workers.api("GET", "/pools?limit=2&before=%s" % page["next"])
    assert [p["id"] for p in rest["pools"]] == [ids[0]]
    status, running = two_workers.api("GET", "/pools?status=running")
    assert running["pools"] == []


def test_original_readme_get_workers_shows_state_and_stats(two_workers):
    status, body = two_workers.api("GET", "/workers")
    assert status == 200
    workers = {w["name"]: w for w in body["workers"]}
    assert set(workers) == {"node1", "node2"}
    node = workers["node1"]
    assert node["online"] and node["address"] == "127.0.0.1" and node["connectedSince"]
    wait_until(lambda: two_workers.api("GET", "/workers")[1]["workers"][0]["stats"], what="a heartbeat")
    stats = two_workers.api("GET", "/workers")[1]["workers"][0]["stats"]
    assert {"cpuPercent", "loadAverage", "memory", "disk", "temperature"} <= set(stats)
    assert stats["memory"]["total"] > 0


def test_original_readme_kill_stops_the_listed_workers_jobs(two_workers):
    status, submitted = two_workers.api("POST", "/job", {"cmd": "sleep 30", "workers": ["node1", "node2"]})
    pool_id = submitted["id"]
    wait_until(lambda: all(w["runningJobs"] for w in two_workers.api("GET", "/workers")[1]["workers"]),
               what="jobs running")
    status, killed = two_workers.api("PUT", "/kill/%s" % pool_id, {"workers": ["node1"]})
    assert status == 200 and killed["workers"] == {"node1": "signalled"}
    status, pool = two_workers.api("GET", "/pool/%s?wait=0" % pool_id)
    status, killed = two_workers.api("PUT", "/kill/%s" % pool_id)
    assert killed["workers"]["node2"] == "signalled"
    status, pool = two_workers.api("GET", "/pool/%s?wait=20" % pool_id)
    assert pool["status"] == "done"
    assert {j["state"] for j in pool["jobs"].values()} == {"killed"}
    assert pool["jobs"]["node1"]["signal"] == "SIGTERM"
    status, again = two_workers.api("PUT", "/kill/%s" % pool_id)
    assert again["workers"] == {"node1": "already_ended", "node2": "already_ended"}


def test_unknown_and_offline_workers_get_an_explicit_state(two_fake_workers):
    two_workers = two_fake_workers
    two_workers.workers["node2"].stop()
    two_workers.wait_until(lambda: not [w for w in two_workers.api("GET", "/workers")[1]["workers"]
                                        if w["name"] == "node2" and w["online"]], what="node2 offline")
    pool = two_workers.run("true", ["node1", "node2", "ghost"])
    states = {name: job["state"] for name, job in pool["jobs"].items()}
    assert states == {"node1": "succeeded", "node2": "offline", "ghost": "unknown_worker"}


def test_health_answers_for_monitoring(two_workers):
    status, body = two_workers.api("GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["workersOnline"] == 2


@pytest.mark.parametrize("method,path,raw,status,code", [
    ("POST", "/job", b"{not json", 400, "malformed_json"),
    ("POST", "/job", b'{"cmd": ["ls"]}', 400, "wrong_type"),
    ("POST", "/job", b'{"cmd": ""}', 400, "empty_cmd"),
    ("POST", "/job", b'{"cmd": "true", "workers": 7}', 400, "wrong_type"),
    ("POST", "/job", b"", 400, "empty_body"),
    ("GET", "/pool/01a229b2-42fb-71e9-a463-f969feb65bc5", None, 404, "unknown_pool"),
    ("GET", "/pool/nonsense", None, 404, "unknown_pool"),
    ("PUT", "/kill/01a229b2-42fb-71e9-a463-f969feb65bc5", None, 404, "unknown_pool"),
    ("GET", "/pool/x?wait=later", None, 400, "wrong_type"),
    ("DELETE", "/job", None, 405, "method_not_allowed"),
    ("GET", "/job", None, 405, "method_not_allowed"),
    ("GET", "/no/such/thing", None, 404, "not_found"),
    ("POST", "/job", "OVERSIZED", 413, "payload_too_large"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None)
def test_bad_requests_get_a_json_error_and_the_service_keeps_serving(two_fake_workers, method, path, raw, status, code):
    two_workers = two_fake_workers
    if raw == "OVERSIZED":
        raw = b'{"cmd": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    got_status, body = two_workers.api(method, path, raw=raw)
    assert got_status == status
    assert body["error"]["code"] == code and body["error"]["message"]
    assert two_workers.run("echo still here", ["node1"])["jobs"]["node1"]["stdout"] == "still here\n"


def test_chunked_oversized_body_is_refused(two_workers):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536
    request = urllib.request.Request("http://127.0.0.1:%d/job" % two_workers.api_port, data=chunks(), method="POST")
    request.add_header("Transfer-Encoding", "chunked")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 413


def test_tokens_are_required_when_configured(in_process):
    token = "t0ken-" + "x" * 20
    cluster = in_process(api_tokens=[token], api_host="127.0.0.1")
    status, body = cluster.api("GET", "/pools", token=None)
    assert status == 401 and body["error"]["code"] == "missing_token"
    status, body = cluster.api("GET", "/pools", token="wrong-" + "y" * 20)
    assert status == 401 and body["error"]["code"] == "bad_token"
    assert cluster.api("GET", "/pools", token=token)[0] == 200
    assert cluster.api("GET", "/health", token=None)[0] == 200


def test_without_a_token_the_api_listens_on_loopback_only(cluster):
    cluster.start_master(api_host="0.0.0.0")
    assert "listens on 127.0.0.1 only" in cluster.master.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", cluster.api_port), timeout=2).close()
