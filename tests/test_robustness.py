"""Regressions for what a hostile client, a bad worker or a damaged file once did to the
master (issue 9): each test drives real processes and checks that the bad input got a
clear answer and that everyone else was still served."""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import gevent.socket
import pytest

from conftest import KEY, REPO, wait_until
from pcci import framing, protocol, tls
from pcci.link import Link
from pcci.handshake import worker_side as handshake
from pcci.worker.spool import unacknowledged


def spooled(cluster, name):
    directory = os.path.join(cluster.workers[name].settings["state_dir"], "results")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


@pytest.fixture
def served(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    return cluster


@pytest.fixture
def served_here(in_process):
    """The master in this process (tests/harness.py), for what only the master decides."""
    master = in_process()
    master.start_worker("pi1")
    return master


@pytest.mark.parametrize("raw", [
    b'{"cmd": "true", "workers": ["x\\ud800"]}',
    b'{"cmd": "echo \\ud800"}',
    b'{"cmd": "true", "env": {"A": "\\udc00"}}',
    b'{"cmd": "true", "cwd": "/tmp/\\ud800"}',
])
def test_text_that_cannot_be_stored_is_a_400_and_saving_goes_on(served_here, raw):
    served = served_here
    status, body = served.api("POST", "/job", raw=raw)
    assert status == 400 and body["error"]["code"] == "unencodable_text"
    # Before the fix this wedged the persister: no later pool was saved or answered.
    assert served.run("echo saved", ["pi1"], wait=10)["jobs"]["pi1"]["stdout"] == "saved\n"
    status, health = served.api("GET", "/health")
    assert status == 200 and health["store"] == {"saving": True, "full": False, "backlog": 0, "error": None,
                                                 "failingSince": None}


@pytest.mark.parametrize("raw", [b'{"cmd": "true", "timeout": 1e400}', b'{"cmd": "true", "timeout": NaN}',
                                 b'{"cmd": "true", "timeout": Infinity}'])
def test_numbers_that_are_not_numbers_are_refused(served_here, raw):
    served = served_here
    status, body = served.api("POST", "/job", raw=raw)
    assert status == 400 and body["error"]["code"] == "malformed_json"
    status, page = served.api("GET", "/pools")
    assert status == 200 and page["pools"] == []


class FakeWorker:
    """A peer that holds the cluster key and speaks the protocol, but lies in its results
    (on gevent's sockets: it works with the master in this process too)."""

    def __init__(self, cluster, name):
        sock = gevent.socket.create_connection(("127.0.0.1", cluster.worker_port), timeout=10)
        sock = tls.link_client_context().wrap_socket(sock)
        self.link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES)
        handshake(self.link, KEY, name, 10, tls.peer_fingerprint(sock))
        self.link.decoder.max_frame_bytes = 16 * 1024 * 1024
        self.link.send_now({"type": protocol.SYNC, "running": []})

    def next_run(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.link.receive(timeout)
            if message["type"] == protocol.RUN:
                return message["job"]
            if message["type"] == protocol.PING:
                self.link.send_now({"type": protocol.PONG})
        raise AssertionError("no run frame")

    def close(self):
        self.link.close()


@pytest.mark.parametrize("lie,named", [({"exitCode": 2 ** 64}, "exitCode"), ({"startTime": 10 ** 15}, "startTime"),
                                       ({"stdout": "x\ud800"}, "stdout"), ({"state": "running"}, "state")])
def test_a_workers_impossible_numbers_fail_its_job_never_the_store(served_here, lie, named):
    served = served_here
    liar = FakeWorker(served, "liar")
    try:
        served.wait_online("liar")
        status, submitted = served.api("POST", "/job", {"cmd": "true", "workers": ["liar", "pi1"]})
        job_id = liar.next_run()
        result = protocol.result_message(job_id, "succeeded", 0, None, 1, 2, "", "", False, False)
        result.update(lie)
        # ensure_ascii: a lone surrogate travels as the escape \ud800, as a hostile peer sends it.
        payload = json.dumps(result).encode()
        liar.link.send_now(framing.HEADER.pack(len(payload)) + payload)
        pool = served.api("GET", "/pool/%s?wait=10" % submitted["id"])[1]
        job = pool["jobs"]["liar"]
        assert job["state"] == "failed" and named in job["stderr"] and pool["jobs"]["pi1"]["state"] == "succeeded"
        ack = liar.link.receive(10)
        while ack["type"] != protocol.ACK:
            ack = liar.link.receive(10)
        assert ack["job"] == job_id      # acknowledged: the liar will not send it again
        assert served.api("GET", "/pools")[0] == 200
        assert served.run("echo fine", ["pi1"])["jobs"]["pi1"]["stdout"] == "fine\n"
        assert served.api("GET", "/health")[0] == 200
    finally:
        liar.close()


def test_spooled_files_that_are_not_results_are_set_aside_and_the_worker_comes_online(cluster):
    cluster.start_master()
    worker = cluster.start_worker("pi1")
    worker.stop()
    results = os.path.join(worker.settings["state_dir"], "results")
    for name, text in (("a.json", "[]"), ("b.json", "{}"), ("c.json", '{"type": "result"'),
                       ("d.json", json.dumps({"type": "result", "job": "p/pi1", "state": "exploded"}))):
        with open(os.path.join(results, urllib.parse.quote(name, safe="")), "w") as handle:
            handle.write(text)
    cluster.start_worker("pi1")
    assert cluster.run("echo back", ["pi1"])["jobs"]["pi1"]["stdout"] == "back\n"
    wait_until(lambda: spooled(cluster, "pi1") == ["a.json.bad", "b.json.bad", "c.json.bad", "d.json.bad", "journal"]
               and not unacknowledged(results), what="the bad files set aside and the new result acknowledged")
    assert cluster.workers["pi1"].log().count("moved aside") == 4


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_named_in_one_line_and_the_master_exits_78(cluster, damage):
    cluster.start_master()
    cluster.start_worker("pi1")
    for n in range(20):
        cluster.run("echo %d" % n, ["pi1"])
    cluster.stop()
    path = os.path.join(cluster.master.settings["state_dir"], "pcci.sqlite3")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    if damage == "garbage":
        with open(path, "wb") as handle:
            handle.write(b"this is not a database\n" * 100)
    else:
        os.truncate(path, os.path.getsize(path) // 2)
    result = subprocess.run([sys.executable, "-m", "pcci", "master", "--config", cluster.master.config_path],
                            capture_output=True, text=True, timeout=60, cwd=cluster.base,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 78
    errors = [line for line in result.stderr.splitlines() if line.startswith("pcci-master: cannot start:")]
    assert len(errors) == 1 and path in errors[0] and "damaged" in errors[0]
    assert "Traceback" not in result.stderr


def test_a_config_duration_that_is_not_a_number_is_refused(tmp_path):
    path = tmp_path / "master.yaml"
    path.write_text("cluster_key: %s\nlost_after: .nan\nheartbeat_timeout: .inf\n" % KEY)
    path.chmod(0o600)
    result = subprocess.run([sys.executable, "-m", "pcci", "check-config", "master", str(path)],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 1
    assert "lost_after: expected a finite duration" in result.stderr
    assert "heartbeat_timeout: expected a finite duration" in result.stderr


def test_an_output_cap_whose_result_cannot_fit_a_frame_is_refused(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("cluster_key: %s\nmaster_host: 127.0.0.1\noutput_cap_bytes: 4194304\n" % KEY)
    path.chmod(0o600)
    result = subprocess.run([sys.executable, "-m", "pcci", "check-config", "worker", str(path)],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 1 and "output_cap_bytes, max_frame_bytes" in result.stderr
    assert "lower output_cap_bytes to 1392640" in result.stderr


def test_a_missing_working_directory_is_reported_as_such(served):
    job = served.run("true", ["pi1"], cwd="/no/such/dir")["jobs"]["pi1"]
    assert job["state"] == "failed" and job["exitCode"] is None
    assert "working directory /no/such/dir does not exist" in job["stderr"]


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024


def test_many_huge_pools_do_not_grow_the_master_without_bound(cluster):
    """Observed before: 64 requests naming 120,000 workers took the master from 155 MB to 2 GB,
    and it stayed there (the recent-pools cache was bounded by count, not size)."""
    cluster.start_master(max_pool_jobs=20000)
    names = ["ghost-%05d" % n for n in range(20000)]
    status, body = cluster.api("POST", "/job", {"cmd": "true", "workers": names + ["one-too-many"]})
    assert status == 400 and body["error"]["code"] == "pool_too_large"
    for _ in range(4):
        assert cluster.api("POST", "/job", {"cmd": "true", "workers": names})[0] == 202
    settled = rss_mb(cluster.master.process.pid)
    for _ in range(36):
        status, body = cluster.api("POST", "/job", {"cmd": "true", "workers": names})
        assert status == 202 and body["status"] == "done"      # unknown workers: done at once
    grown = rss_mb(cluster.master.process.pid) - settled
    # 36 more pools of 20,000 jobs each would hold ~200 MB if all were kept in memory.
    assert grown < 80, "master grew by %.0f MB" % grown
    assert cluster.api("GET", "/pools?limit=5")[0] == 200 and cluster.api("GET", "/health")[0] == 200


def test_text_from_a_request_or_a_peer_cannot_forge_a_log_line(served):
    """Observed before: `GET /x%0AWARNING...` wrote a forged log line."""
    served.api("GET", "/x%0AWARNING%20pcci.master.service:%20forged%1B[2J")
    liar = FakeWorker(served, "liar")
    try:
        served.wait_online("liar")
        liar.link.send_now({"type": "error", "code": "x", "message": "bye\nERROR pcci.master.service: forged too"})
        wait_until(lambda: "reported an error" in served.master.log(), what="the error logged")
    finally:
        liar.close()
    lines = served.master.log().splitlines()
    assert not [line for line in lines if "forged" in line and line.startswith(("WARNING pcci.master.service: forged",
                                                                                 "ERROR pcci.master.service: forged"))]
    assert any("/x\\nWARNING" in line for line in lines) and any("bye\\nERROR" in line for line in lines)
    assert "\x1b" not in served.master.log()
