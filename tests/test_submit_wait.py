"""POST /job?wait=: one request submits a pool and answers it once done (docs/api.md)."""

import json

import gevent.socket
import pytest


@pytest.fixture
def master(in_process):
    """The master in this process (tests/harness.py), with one worker."""
    made = in_process()
    made.start_worker("node1")
    return made


def test_one_request_answers_the_finished_pool_whole(master):
    status, pool = master.api("POST", "/job?wait=20", {"cmd": "echo out; echo err >&2; exit 3", "workers": ["node1"]})
    assert status == 200 and pool["status"] == "done" and pool["exitCode"] == 3
    job = pool["jobs"]["node1"]
    assert (job["state"], job["stdout"], job["stderr"]) == ("failed", "out\n", "err\n")
    assert master.api("GET", "/pool/%s" % pool["id"])[1]["jobs"] == pool["jobs"]


def test_the_pool_id_comes_before_the_pool_ends(master):
    """A client learns its pool's id at once (to kill it on Ctrl-C), and the pool later."""
    body = json.dumps({"cmd": "sleep 1; echo late", "workers": ["node1"]}).encode()
    sock = gevent.socket.create_connection(("127.0.0.1", master.api_port), timeout=10)
    try:
        sock.sendall(b"POST /job?wait=20 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     b"%sContent-Length: %d\r\n\r\n%s"
                     % (master.api_port, b"Authorization: Bearer %s\r\n" % master.token.encode() if master.token else b"",
                        len(body), body))
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head = received.split(b"\r\n\r\n")[0].decode()
        location = [line.split(": ", 1)[1] for line in head.split("\r\n") if line.lower().startswith("location:")]
        assert head.startswith("HTTP/1.1 200") and location
        assert master.api("GET", location[0])[1]["status"] == "running"
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
    finally:
        sock.close()
    assert b'"status": "done"' in received and b'"stdout": "late\\n"' in received


def test_a_short_wait_answers_the_running_pool_and_get_waits_on(master):
    status, pool = master.api("POST", "/job?wait=0.05", {"cmd": "sleep 0.5", "workers": ["node1"]})
    assert status == 200 and pool["status"] == "running" and pool["jobs"]["node1"]["state"] == "running"
    status, pool = master.api("GET", "/pool/%s?wait=20" % pool["id"])
    assert pool["status"] == "done" and pool["jobs"]["node1"]["state"] == "succeeded"


@pytest.mark.parametrize("wait", ["soon", "-1", "3601", "nan"])
def test_a_bad_wait_is_refused_before_anything_runs(master, wait):
    before = master.api("GET", "/pools")[1]["pools"]
    status, answer = master.api("POST", "/job?wait=" + wait, {"cmd": "true", "workers": ["node1"]})
    assert status == 400 and answer["error"]["code"] in ("wrong_type", "out_of_range")
    assert master.api("GET", "/pools")[1]["pools"] == before


def test_without_wait_the_answer_is_the_acceptance_as_always(master):
    status, submitted = master.api("POST", "/job", {"cmd": "true", "workers": ["node1"]})
    assert status == 202 and submitted["jobs"] == {"node1": "running"}
