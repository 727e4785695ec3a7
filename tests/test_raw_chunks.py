"""Copy and fetch chunks as raw bytes (protocol raw_chunks): a blob beside a small JSON
head, taken as the very bytes sent, a third fewer bytes on the wire than base64; used only
when both sides name it, so an older master or worker still copies and fetches whole."""

import os
import socket

import gevent
import gevent.socket
import pytest

from conftest import Cluster, as_master_without
from pcci import framing, protocol
from pcci.link import Link
from pcci.master.copy_feeder import FrameCache, chunk_frame_head
from test_streamed_copy import MB, CountingProxy, copy_env, file_sha256, make_file
from test_cli import pcci


def linked_pair():
    a, b = socket.socketpair()
    return (Link(gevent.socket.socket(fileno=a.detach()), 1 << 20),
            Link(gevent.socket.socket(fileno=b.detach()), 1 << 20))


@pytest.mark.parametrize("raw", [True, False])
def test_a_copy_chunk_arrives_as_the_files_bytes_raw_or_as_base64(tmp_path, raw):
    data = os.urandom(300000) + b"\x00{\xff"
    (tmp_path / "blob").write_bytes(data)
    tail = FrameCache(lambda sha256: str(tmp_path / sha256)).tail("blob", 1000, 200000, raw)
    sender, receiver = linked_pair()
    try:
        sender.send(chunk_frame_head("pool/pi1", 1000, len(tail), raw))
        sender.send(tail)
        sender.send({"type": protocol.PING})
        got = protocol.checked(receiver.receive(5), protocol.COPY_CHUNK)
        assert (got["job"], got["offset"]) == ("pool/pi1", 1000)
        assert isinstance(got["data"], bytes) == raw
        assert protocol.chunk_data(got) == data[1000:201000]
        assert receiver.receive(5) == {"type": protocol.PING}
    finally:
        sender.close()
        receiver.close()


def test_a_fetch_chunk_blob_carries_bytes_and_its_fields():
    piece = b"\xff\xfe not text \x00" * 1000
    head = {"type": protocol.FETCH_CHUNK, "job": "pool/pi1", "offset": 0, "bytes": len(piece), "sha256": None}
    payload = b"".join(framing.encode_blob_payload(head, [("data", piece)], raw=True))
    got = protocol.checked(framing.decode_payload(payload), protocol.FETCH_CHUNK)
    assert got == dict(head, data=piece)


def test_a_blob_of_an_unknown_kind_is_garbage():
    text = framing.encode_payload({"type": "copy_chunk", "blobs": [["data", 1, "utf-16"]]})
    payload = b"\x00" + framing.HEADER.pack(len(text)) + text + b"a"
    with pytest.raises(framing.FrameError, match="usable"):
        framing.FrameDecoder(1 << 20).feed(framing.HEADER.pack(len(payload)) + payload)


def test_base64_that_is_not_base64_is_a_protocol_error():
    with pytest.raises(protocol.ProtocolError, match="not base64"):
        protocol.chunk_data({"type": protocol.COPY_CHUNK, "job": "pool/pi1", "offset": 0, "data": "a!b"})


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize("older", ["none", "master", "worker"])
def test_copy_and_fetch_arrive_whole_whichever_side_is_the_older_release(tmp_path, older):
    cluster = Cluster(tmp_path)
    proxy = None
    try:
        if older == "master":
            as_master_without(cluster, tmp_path, "RAW_CHUNKS")
        cluster.start_master(log_level="info")
        proxy = CountingProxy(cluster.worker_port)
        cluster.start_worker("pi1", master_port=proxy.port, log_level="info",
                             module="before_raw_chunks" if older == "worker" else "pcci")
        size = 6 * MB
        digest = make_file(tmp_path / "image.bin", size)
        (tmp_path / "dest").mkdir()
        before = proxy.relayed
        done = pcci("copy", str(tmp_path / "image.bin"), "-w", "pi1", "--dest", str(tmp_path / "dest" / "image.bin"),
                    env=copy_env(cluster), timeout=180)
        assert done.returncode == 0, done.stderr
        assert file_sha256(tmp_path / "dest" / "image.bin") == digest
        copied = proxy.relayed - before
        fetched = pcci("fetch", str(tmp_path / "dest" / "image.bin"), "-w", "pi1", "--dest", str(tmp_path / "got"),
                       env=copy_env(cluster), timeout=180)
        assert fetched.returncode == 0, fetched.stderr
        assert file_sha256(tmp_path / "got" / "pi1" / "image.bin") == digest
        fetched_bytes = proxy.relayed - before - copied
        # On the wire: the bytes and TLS framing, or a third more as base64 to an older side.
        for moved in (copied, fetched_bytes):
            assert (moved < size * 1.05) if older == "none" else (moved > size * 1.3), (moved, size)
        for service in [cluster.master] + list(cluster.workers.values()):
            assert "garbage" not in service.log() and "Traceback" not in service.log()
    finally:
        if proxy is not None:
            proxy.close()
        cluster.stop()
