"""A large result on the master: spilled to a file as it arrives (result_spill), stored in
pieces (output_rows) on SQLite and MariaDB, streamed back by GET /pool/ID, the same
bytes as before; durable and stored once across a master killed in the middle; refused
when its frame lies about its sizes or is over the limit."""

import json
import os
import signal
import socket
import sqlite3
import time

import gevent
import gevent.socket
import pytest

from conftest import Cluster, wait_until
from pcci import framing, protocol
from pcci.link import Link
from pcci.master.api_edge import to_json_bytes
from pcci.master.result_spill import SPILL_OVER_BYTES, SpillingDecoder
from pcci.output_text import decode
from pcci.spilled_text import SpillWriter, SpilledText
from pcci.worker.results import build_result, output_blobs
from pcci.worker.spool import unacknowledged

import mariadb

MB = 1000 * 1000
# Text, a byte that is not UTF-8, a euro sign cut by any piece boundary.
ODD = "café ".encode() + b"\xff \xe2\x82\xac "


def spilled(data, piece):
    writer = SpillWriter()
    for at in range(0, len(data), piece):
        writer.write(data[at:at + piece])
    return writer.finish()


@pytest.mark.parametrize("piece", [1, 7, 65536])
def test_a_spilled_text_reads_as_the_str_it_holds(piece):
    data = (ODD + b"x" * 5000) * 40 + b"\xe2\x82"       # a character cut at the very end
    expected = decode(data)
    text = spilled(data, piece)
    assert len(text) == len(expected) and text.size == len(expected.encode())
    assert text.text() == expected
    for start, end in [(0, 3), (4, 6), (100000, 150000), (len(expected) - 5, len(expected) + 9), (9, 9)]:
        assert text[start:end] == expected[start:end]
    assert b"".join(text.pieces(1000)) == expected.encode()


def _link_pair(decoder):
    a, b = socket.socketpair()
    sender = Link(gevent.socket.socket(fileno=a.detach()), 64 << 20)
    receiver = Link(gevent.socket.socket(fileno=b.detach()), 64 << 20, decoder=decoder)
    return sender, receiver


def test_a_large_result_frame_arrives_spilled_and_the_link_goes_on(tmp_path):
    sender, receiver = _link_pair(SpillingDecoder(64 << 20, str(tmp_path)))
    try:
        output = ODD + b"y" * (3 << 20) + b"\xe2\x82"
        result = build_result("pool/pi1", 0, None, 1000, 2000, bytearray(output), bytearray(b"oops\n"), True, False)
        sender.send({"type": protocol.PING})
        sender.send_payload(framing.encode_blob_payload(*output_blobs(result)))
        sender.send({"type": protocol.PONG})
        assert receiver.receive(5) == {"type": protocol.PING}
        got = receiver.receive(5)
        assert type(got["stdout"]) is SpilledText and got["stdout"].text() == decode(output)
        assert got["stderr"] == "oops\n" and got["stdoutTruncated"] is True
        assert protocol.check_result(got) == (got, None)
        assert receiver.receive(5) == {"type": protocol.PONG}     # the stream goes on after it
    finally:
        sender.close()
        receiver.close()


def _blob_frame(sizes, body):
    head = framing.encode_payload({"type": "result", "job": "p/pi1", "blobs": [list(s) for s in sizes]})
    payload = b"\x00" + framing.HEADER.pack(len(head)) + head + body
    return framing.HEADER.pack(len(payload)) + payload


def test_a_large_frame_that_lies_about_its_sizes_is_refused_before_its_bytes(tmp_path):
    size = SPILL_OVER_BYTES + 10
    decoder = SpillingDecoder(64 << 20, str(tmp_path))
    frame = _blob_frame([("stdout", size + 1)], b"x" * size)     # announces more than the frame holds
    with pytest.raises(framing.FrameError, match="do not add up"):
        decoder.feed(frame[:1000])
    decoder = SpillingDecoder(SPILL_OVER_BYTES * 2, str(tmp_path))
    frame = _blob_frame([("stdout", size * 2)], b"x" * size * 2)
    with pytest.raises(framing.FrameError, match="over the .* byte limit"):
        decoder.feed(frame[:1000])


# -- real processes --------------------------------------------------------------------
CAP = 30 << 20
FRAME = 12 * CAP + (2 << 20)
BIG = 24 * MB
# Non-ASCII at both ends, 24 MB of x between.
BIG_CMD = ("printf 'caf\\303\\251 \\377 '; head -c %d /dev/zero | tr '\\0' x; printf ' \\342\\202\\254 end'" % BIG)
BIG_TEXT = "café \ufffd " + "x" * BIG + " € end"


def run_big(cluster, cmd, wait=150):
    """cluster.run with room for a large output to be sent and stored on a busy machine."""
    status, submitted = cluster.api("POST", "/job", {"cmd": cmd, "workers": ["pi1"]})
    assert status == 202, submitted
    status, pool = cluster.api("GET", "/pool/%s?wait=%d" % (submitted["id"], wait), timeout=wait + 30)
    assert status == 200 and pool["status"] == "done", pool["status"]
    return pool


def raw_get(cluster, path):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (cluster.api_port, path), timeout=180) as response:
        return response.read()


def followed_text(cluster, pool_id):
    """What a follower of the pool's event stream reads of pi1's stdout."""
    import http.client
    from pcci.client.events import parse_events
    connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=180)
    connection.request("GET", "/pool/%s/events" % pool_id)
    parts = []
    for _, kind, data in parse_events(connection.getresponse()):
        event = json.loads(data)
        if kind == "output" and event["stream"] == "stdout":
            parts.append(event["text"])
    connection.close()
    return "".join(parts)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.process)])
def store_settings(request, tmp_path):
    if request.param == "sqlite":
        return {}
    server = request.getfixturevalue("mariadb_server")
    password = tmp_path / "db-password"
    password.write_text("secret\n")
    password.chmod(0o600)
    url = mariadb.fresh_database(server, "pcci_big_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10 ** 8))
    return dict(store_url=url, store_password_file=str(password))


def start_active(cluster, **settings):
    """A master, once it is the active one (on MariaDB it takes the lease first)."""
    cluster.start_master(log_level="info", max_frame_bytes=FRAME, **settings)
    wait_until(lambda: cluster.api("GET", "/health?role=active", token=None)[0] == 200, timeout=90,
               what="the master active")


@pytest.mark.process
def test_a_large_output_round_trips_byte_exact_through_the_store(tmp_path, store_settings):
    cluster = Cluster(tmp_path)
    try:
        start_active(cluster, **store_settings)
        cluster.start_worker("pi1", log_level="info", output_cap_bytes=CAP, max_frame_bytes=FRAME)
        pool = run_big(cluster, BIG_CMD)
        job = pool["jobs"]["pi1"]
        assert job["state"] == "succeeded" and job["stdoutTruncated"] is False
        assert job["stdout"] == BIG_TEXT and job["stderr"] == ""
        body = raw_get(cluster, "/pool/" + pool["id"])
        assert body == to_json_bytes(json.loads(body))      # streamed, the bytes of one rendering
        assert followed_text(cluster, pool["id"]) == BIG_TEXT
        cluster.master.stop()           # the pool now comes from the store
        start_active(cluster, **store_settings)
        assert raw_get(cluster, "/pool/" + pool["id"]) == body
        assert followed_text(cluster, pool["id"]) == BIG_TEXT
    finally:
        cluster.stop()


@pytest.mark.process
def test_a_large_output_over_the_cap_is_cut_and_flagged(cluster):
    cap = 5 << 20
    cluster.start_master(log_level="info")
    cluster.start_worker("pi1", log_level="info", output_cap_bytes=cap, max_frame_bytes=12 * cap + (2 << 20))
    pool = run_big(cluster, "head -c 8000000 /dev/zero | tr '\\0' y; echo done >&2")
    job = pool["jobs"]["pi1"]
    assert job["stdoutTruncated"] is True and job["stderrTruncated"] is False
    assert job["stdout"] == "y" * len(job["stdout"]) and 0 < len(job["stdout"]) <= cap
    assert job["stderr"] == "done\n"


@pytest.mark.process
def test_a_large_result_survives_the_master_killed_after_the_send_and_is_stored_once(cluster):
    cluster.start_master(log_level="info", max_frame_bytes=FRAME)
    worker = cluster.start_worker("pi1", log_level="info", output_cap_bytes=CAP, max_frame_bytes=FRAME)
    spool = os.path.join(worker.settings["state_dir"], "results")
    status, submitted = cluster.api("POST", "/job", {"cmd": BIG_CMD, "workers": ["pi1"]})
    assert status == 202
    # The worker sends a result, then spools it: once it is in the spool, it has been sent.
    # (The journal's size, not its records: reading 24 MB every 2 ms would slow what it watches.)
    journal = os.path.join(spool, "journal")
    wait_until(lambda: os.path.exists(journal) and os.path.getsize(journal) > 0, timeout=60,
               interval=0.002, what="the result spooled")
    cluster.master.process.send_signal(signal.SIGKILL)
    cluster.master.process.wait(10)
    cluster.start_master(log_level="info", max_frame_bytes=FRAME)
    status, pool = cluster.api("GET", "/pool/%s?wait=150" % submitted["id"], timeout=180)
    assert pool["status"] == "done" and pool["jobs"]["pi1"]["stdout"] == BIG_TEXT
    wait_until(lambda: not unacknowledged(spool), timeout=90, what="the spool emptied (acknowledged)")
    cluster.master.stop()
    with sqlite3.connect(os.path.join(cluster.base, "master-state", "pcci.sqlite3")) as db:
        rows = db.execute("SELECT stream, seq FROM job_output WHERE pool_id = ? ORDER BY stream, seq",
                          (submitted["id"],)).fetchall()
    pieces = -(-len(BIG_TEXT.encode()) // (1 << 20))
    assert rows == [(0, seq) for seq in range(pieces)]      # stored once, whole


@pytest.mark.process
def test_a_worker_whose_large_frame_lies_is_cut_off_with_one_line_and_others_go_on(cluster):
    from raw_worker import RawWorker
    cluster.start_master(log_level="info", max_frame_bytes=8 << 20)
    cluster.start_worker("pi1", log_level="info")
    liars = []
    for name, sizes, body in [("liar1", [("stdout", (2 << 20) + 1)], b"x" * (2 << 20)),   # more than its frame
                              ("liar2", [("stdout", 9 << 20)], b"x" * (9 << 20))]:      # over max_frame_bytes
        liar = RawWorker(cluster.worker_port, name)
        liars.append(liar)
        frame = _blob_frame(sizes, body)
        try:
            liar.sock.sendall(frame[:SPILL_OVER_BYTES // 2])    # its head: judged before the rest comes
        except OSError:
            pass                        # the master closed the link before it was all sent
    for liar in liars:
        liar.sock.settimeout(10)
        with pytest.raises((ConnectionError, OSError)):
            while True:
                liar.receive()
        liar.close()
    log = cluster.master.log()
    assert log.count("liar1 closed: it sent garbage") == 1 and "do not add up" in log
    assert log.count("liar2 closed: it sent garbage") == 1 and "over the" in log
    assert cluster.run("echo fine", ["pi1"])["jobs"]["pi1"]["stdout"] == "fine\n"


@pytest.mark.process
def test_a_long_live_output_is_followed_and_shown_while_the_job_runs(cluster):
    cluster.start_master(log_level="info", max_frame_bytes=FRAME)
    cluster.start_worker("pi1", log_level="info", output_cap_bytes=CAP, max_frame_bytes=FRAME)
    live = "café \ufffd " + "z" * (5 * MB)
    status, submitted = cluster.api("POST", "/job", {
        "cmd": "printf 'caf\\303\\251 \\377 '; head -c %d /dev/zero | tr '\\0' z; sleep 4; echo" % (5 * MB),
        "workers": ["pi1"]})
    assert status == 202
    shown = {}

    def all_shown():
        shown.update(json.loads(raw_get(cluster, "/pool/" + submitted["id"])))
        return shown["jobs"]["pi1"]["stdout"] == live
    wait_until(all_shown, timeout=90, interval=0.2, what="the live output shown whole")    # past the memory's part
    assert shown["status"] == "running"
    assert followed_text(cluster, submitted["id"]) == live + "\n"


def test_a_large_result_that_cannot_be_written_ends_the_link_like_a_lost_one(tmp_path):
    decoder = SpillingDecoder(64 << 20, str(tmp_path / "gone"))     # no such directory: nothing can be written
    size = SPILL_OVER_BYTES + 10
    with pytest.raises(framing.ConnectionClosed, match="cannot write a large result"):
        decoder.feed(_blob_frame([("stdout", size)], b"x" * size)[:1000])
