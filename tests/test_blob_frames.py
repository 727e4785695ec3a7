"""A result's output as raw bytes beside a small JSON header (framing's blob payload):
decoded on the master exactly as the worker decoded it before, refused when its sizes lie,
spooled and sent again, and used only when both sides name it (an older master or worker
still gets and sends JSON)."""

import socket

import gevent
import gevent.socket
import pytest

from conftest import Cluster, as_master_without
from pcci import framing, protocol
from pcci.link import Link
from pcci.output_text import decode
from pcci.worker.outbox import Outbox
from pcci.worker.results import build_result, output_blobs
from pcci.worker.spool import Spool

# Text, a byte that is not UTF-8, a character cut at the very end.
OUTPUT = "café ".encode() + b"\xff end \xe2\x82"


def finished(stdout, stderr=b""):
    return build_result("pool/pi1", 0, None, 1000, 2000, bytearray(stdout), bytearray(stderr), False, True)


def test_output_bytes_arrive_as_the_text_the_worker_would_have_sent():
    a, b = socket.socketpair()
    sender = Link(gevent.socket.socket(fileno=a.detach()), 1 << 20)
    receiver = Link(gevent.socket.socket(fileno=b.detach()), 1 << 20)
    try:
        result = finished(OUTPUT * 20000, b"oops\n")
        header, blobs = output_blobs(result)
        payload = framing.encode_blob_payload(header, blobs)
        assert payload[1] is result["stdout"]               # the job's bytes, not a copy
        sender.send_payload(payload)
        sender.send({"type": protocol.PING})
        got = receiver.receive(5)
        assert got == dict(result, stdout=decode(OUTPUT * 20000), stderr="oops\n")
        assert protocol.check_result(got) == (got, None)
        assert receiver.receive(5) == {"type": protocol.PING}     # the stream goes on after it
    finally:
        sender.close()
        receiver.close()


def _payload(head, *blobs):
    text = framing.encode_payload(head)
    return b"\x00" + framing.HEADER.pack(len(text)) + text + b"".join(blobs)


@pytest.mark.parametrize("payload, why", [
    (_payload({"type": "result", "blobs": [["stdout", 5]]}, b"abc"), "do not add up"),
    (_payload({"type": "result", "blobs": [["stdout", 2]]}, b"abc"), "do not add up"),
    (_payload({"type": "result", "blobs": [["stdout", 1], ["stdout", 1]]}, b"ab"), "usable"),
    (_payload({"type": "result", "job": "x", "blobs": [["job", 1]]}, b"a"), "usable"),
    (_payload({"type": "result", "blobs": [["stdout", -1]]}), "usable"),
    (_payload({"type": "result", "blobs": [["stdout", True]]}, b"a"), "usable"),
    (_payload({"type": "result"}), "usable"),
    (b"\x00\x00\x00\x10{}", "runs past"),
    (b"\x00\x00", "shorter"),
])
def test_a_blob_frame_whose_sizes_lie_is_garbage(payload, why):
    decoder = framing.FrameDecoder(1 << 20)
    with pytest.raises(framing.FrameError, match=why):
        decoder.feed(framing.HEADER.pack(len(payload)) + payload)


def test_a_blob_frame_over_the_limit_is_refused_before_it_is_buffered():
    decoder = framing.FrameDecoder(1000)
    payload = _payload({"type": "result", "blobs": [["stdout", 2000]]}, b"x" * 2000)
    with pytest.raises(framing.FrameError, match="over the 1000 byte limit"):
        decoder.feed(framing.HEADER.pack(len(payload)) + payload[:10])


class _Sent:
    """What a link was given to send."""

    def __init__(self):
        self.payloads = []

    def send_payload(self, payload):
        self.payloads.append(payload)


@pytest.mark.parametrize("blobs", [True, False])
def test_a_spooled_result_is_sent_again_as_the_same_text(tmp_path, blobs):
    spool = Spool(str(tmp_path / "spool"))
    outbox = Outbox(spool, 16 << 20)
    first = _Sent()
    outbox.attach(first, blobs=blobs)
    result = finished(OUTPUT, b"err")
    outbox.deliver(result)
    (payload,) = first.payloads
    assert isinstance(payload, tuple) == blobs          # an older master gets JSON only
    text = dict(result, stdout=decode(OUTPUT), stderr="err")
    assert framing.decode_payload(b"".join(payload) if blobs else payload) == text
    again = _Sent()
    outbox.attach(again, blobs=True)                    # a reconnect: what the spool held, as blobs
    assert [framing.decode_payload(b"".join(p)) for p in again.payloads] == [text]
    older = _Sent()
    outbox.attach(older, blobs=False)                   # ... or as JSON, to an older master
    assert [framing.decode_payload(p) for p in older.payloads] == [text]
    outbox.acknowledged("pool/pi1")
    assert Spool(str(tmp_path / "spool")).pending() == []      # a restart sends nothing again


@pytest.mark.process
@pytest.mark.parametrize("older", ["none", "master", "worker"])
def test_output_arrives_whole_whichever_side_is_the_older_release(tmp_path, older):
    cluster = Cluster(tmp_path)
    try:
        if older == "master":
            as_master_without(cluster, tmp_path, "BLOB_FRAMES")
        cluster.start_master(log_level="info")
        cluster.start_worker("pi1", module="old_release" if older == "worker" else "pcci", log_level="info")
        pool = cluster.run("printf 'caf\\303\\251 \\377 end\\n'; head -c 300000 /dev/zero | tr '\\0' x; "
                           "printf err >&2", ["pi1"])
        job = pool["jobs"]["pi1"]
        assert job["state"] == "succeeded"
        assert job["stdout"] == "café \ufffd end\n" + "x" * 300000 and job["stderr"] == "err"
        assert "garbage" not in cluster.master.log()
    finally:
        cluster.stop()
