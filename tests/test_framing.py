import socket

import pytest

from pcci import framing
from pcci.framing import FrameDecoder, FrameError, encode


def test_round_trip_keeps_unicode_and_nesting():
    message = {"type": "result", "stdout": "héllo ✓\n", "nested": {"a": [1, 2, None]}}
    assert FrameDecoder().feed(encode(message)) == [message]


def test_decoder_reassembles_frames_split_at_every_byte():
    stream = encode({"type": "ping"}) + encode({"type": "pong", "n": 1})
    decoder = FrameDecoder()
    seen = []
    for index in range(len(stream)):
        seen += decoder.feed(stream[index:index + 1])
    assert seen == [{"type": "ping"}, {"type": "pong", "n": 1}]


def test_oversized_length_is_refused_before_the_payload_arrives():
    decoder = FrameDecoder(max_frame_bytes=100)
    with pytest.raises(FrameError, match="over the 100 byte limit"):
        decoder.feed(framing.HEADER.pack(101))


def test_http_request_on_the_worker_port_is_garbage():
    with pytest.raises(FrameError):
        FrameDecoder().feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


@pytest.mark.parametrize("payload", [b"\xff\xfe", b"not json", b"[1,2]", b'{"no_type": 1}', b'{"type": 5}'])
def test_payload_that_is_not_a_typed_json_object_is_garbage(payload):
    with pytest.raises(FrameError):
        FrameDecoder().feed(framing.HEADER.pack(len(payload)) + payload)


def test_frames_cross_a_real_socket_pair():
    from pcci.link import Link
    import gevent
    left, right = socket.socketpair()
    import gevent.socket
    a = Link(gevent.socket.socket(fileno=left.detach()), 1024)
    b = Link(gevent.socket.socket(fileno=right.detach()), 1024)
    for n in range(50):
        a.send({"type": "n", "n": n})
    got = [b.receive(timeout=5)["n"] for _ in range(50)]
    assert got == list(range(50))
    a.close()
    with pytest.raises(framing.ConnectionClosed):
        b.receive(timeout=5)
    b.close()
    gevent.sleep(0)


def test_encoder_varying_matches_encode():
    common = {"type": "run", "cmd": "echo 'ünï'", "timeout": None, "env": {"A": "1"}, "cwd": None}
    encode_with = framing.encoder_varying(common, "job")
    for job in ("p/n1", 'p/"quoted"'):
        assert FrameDecoder().feed(encode_with(job)) == [dict(common, job=job)]


def test_absurdly_nested_payload_is_garbage_not_a_crash():
    payload = b"[" * 100000 + b"]" * 100000
    with pytest.raises(FrameError):
        FrameDecoder(len(payload)).feed(framing.HEADER.pack(len(payload)) + payload)
