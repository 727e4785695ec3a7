"""Frames about a job the master does not run there are answered with one kill, not one
kill a frame (pcci/master/answer_once.py): the pure rule, a worker sending a stale
stream to a real master, and a real fetch killed with its chunks in flight (still clean)."""

import base64
import collections
import pathlib
import socket
import time

from linkproxy import LinkProxy
from pcci import protocol
from pcci.master.answer_once import AnswerOnce

STALE_FETCH = "01a2488a-70f2-7141-81a5-0a1e519e3c4d/pi1"
OTHER_STALE_FETCH = "01a2488a-70f2-7141-81a5-0a1e519e3c4e/pi1"
STALE_COPY = "01a2488a-70f2-7141-81a5-0a1e519e3c4f/pi1"
MB = 1024 * 1024


def test_a_job_is_answered_once_in_its_window_then_again():
    answers = AnswerOnce(window=10, capacity=8)
    assert answers.due("session", "job", now=100.0)
    assert not answers.due("session", "job", now=100.1)
    assert not answers.due("session", "job", now=109.9)
    assert answers.due("session", "job", now=110.0)


def test_each_job_and_each_session_is_answered_on_its_own():
    answers = AnswerOnce(window=10, capacity=8)
    assert answers.due("a", "job", 0)
    assert answers.due("a", "other job", 0)
    assert answers.due("b", "job", 0)
    assert not answers.due("a", "job", 1)


def test_memory_is_bounded_the_oldest_answer_forgotten_first():
    answers = AnswerOnce(window=10, capacity=3)
    for n in range(1000):
        assert answers.due("session", "job %d" % n, 0)
    assert len(answers.answered) == 3
    assert not answers.due("session", "job 999", 1)
    assert answers.due("session", "job 0", 1)       # forgotten: answered again, one kill more


def test_a_sessions_answers_go_with_it():
    answers = AnswerOnce(window=10, capacity=8)
    old, other = object(), object()
    answers.due(old, "job", 0)
    answers.due(other, "job", 0)
    answers.forget(old)
    assert list(answers.answered) == [(other, "job")]
    assert answers.due(old, "job", 1)


def kills_received(worker, quiet=2.0, limit=30.0):
    """How many kills came for each job id, until none came for ``quiet`` seconds."""
    worker.sock.settimeout(quiet)
    kills = collections.Counter()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            message = worker.receive()
        except socket.timeout:
            break
        if message["type"] == protocol.KILL:
            kills[message["job"]] += 1
        elif message["type"] == protocol.PING:
            worker.send({"type": protocol.PONG})
    return kills


def test_a_stale_stream_of_chunks_gets_one_kill_per_job_not_one_per_chunk(cluster):
    """Before, 200 chunks of a fetch the master does not run were answered with 200 kills
    (and a real worker answers each kill with a kill_result)."""
    from raw_worker import RawWorker
    cluster.start_master(heartbeat_timeout="60s")       # the raw worker sends no heartbeats
    stale = RawWorker(cluster.worker_port, "pi1", features=[protocol.FILE_STREAM, protocol.FILE_FETCH])
    try:
        cluster.wait_online("pi1")
        for offset in range(0, 200 * 5, 5):
            stale.send({"type": protocol.FETCH_CHUNK, "job": STALE_FETCH, "offset": offset, "bytes": 1000,
                        "data": base64.b64encode(b"hello").decode(), "sha256": None})
        stale.send({"type": protocol.FETCH_CHUNK, "job": OTHER_STALE_FETCH, "offset": 0, "bytes": 5,
                    "data": base64.b64encode(b"hello").decode(), "sha256": None})
        for _ in range(50):
            stale.send({"type": protocol.COPY_FROM, "job": STALE_COPY, "offset": 0})
        assert kills_received(stale) == {STALE_FETCH: 1, OTHER_STALE_FETCH: 1, STALE_COPY: 1}
        assert cluster.api("GET", "/health")[0] == 200
    finally:
        stale.close()
    assert cluster.master.log().count("which is not running; telling it to stop") == 1
    assert not list((pathlib.Path(cluster.base) / "master-state" / "fetched").glob("*/*")), "a stale chunk was stored"


def test_a_fetch_killed_with_chunks_in_flight_ends_killed_and_the_worker_goes_on(cluster, tmp_path):
    """A kill that meets a fetch's chunks in flight (taken as the job still runs until its
    result) still ends it killed, keeps nothing, and leaves the worker working."""
    cluster.start_master()
    proxy = LinkProxy(cluster.worker_port)
    try:
        cluster.start_worker("pi1", master_port=proxy.port)
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(range(256)) * (64 * MB // 256))
        proxy.shape(delay=0.004)        # about 16 MB/s: the kill comes while chunks flow
        status, submitted = cluster.api("POST", "/fetch", {"workers": ["pi1"], "path": str(big)})
        assert status == 202, submitted
        cluster.wait_running(submitted["id"], "pi1")
        status, killed = cluster.api("PUT", "/kill/%s" % submitted["id"], {})
        assert status == 200 and killed["workers"]["pi1"] == "signalled", killed
        job = cluster.api("GET", "/pool/%s?wait=30" % submitted["id"])[1]["jobs"]["pi1"]
        assert job["state"] == "killed" and "the fetch was killed after" in job["stderr"], job
        assert cluster.run("echo still here", ["pi1"])["jobs"]["pi1"]["stdout"] == "still here\n"
        status, missing = cluster.api("GET", "/pool/%s/files/pi1" % submitted["id"])
        assert (status, missing["error"]["code"]) == (404, "unknown_file")
    finally:
        proxy.close()
