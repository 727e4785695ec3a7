"""The link over a real TLS connection on a socket pair: large frames cross whole, a
congested link says so and calls back when it has drained, and a link whose peer has
gone takes further frames without raising."""

import gevent
import gevent.socket
import pytest

from pcci import framing, tls
from pcci.link import Link
from conftest import self_signed


@pytest.fixture
def tls_pair(tmp_path):
    """(client Link, server Link, drained calls) on a TLS 1.3 connection over a socket pair."""
    cert, key = self_signed(str(tmp_path))
    left, right = gevent.socket.socketpair()
    server_context = tls.server_context(cert, key)
    client_context = tls.link_client_context(None)
    accepted = gevent.spawn(lambda: server_context.wrap_socket(right, server_side=True))
    client = client_context.wrap_socket(left, server_hostname="pcci")
    server = accepted.get(timeout=10)
    drained = []
    pair = (Link(client, 1 << 30, "client", on_drained=lambda: drained.append(True)),
            Link(server, 1 << 30, "server"), drained)
    yield pair
    pair[0].close()
    pair[1].close()


def test_a_large_payload_crosses_whole_and_the_writer_says_when_it_has_drained(tls_pair):
    client, server, drained = tls_pair
    text = "x" * (8 * 1024 * 1024)
    client.send({"type": "ping"})
    client.send_payload(framing.encode_payload({"type": "result", "stdout": text}))
    assert client.queued_bytes() > 0            # the peer is not reading yet: the rest waits
    with gevent.Timeout(20):
        assert server.receive() == {"type": "ping"}
        assert server.receive()["stdout"] == text
        while client.queued_bytes() or not drained:
            gevent.sleep(0.01)
    assert drained


def test_frames_for_a_peer_that_has_gone_are_dropped_without_an_error(tls_pair):
    client, server, _ = tls_pair
    server.sock.close()
    with gevent.Timeout(10):
        for _ in range(200):
            client.send_payload(framing.encode_payload({"type": "result", "stdout": "y" * 65536}))
            if client.closed:
                break
            gevent.sleep(0.005)
    assert client.closed
    client.send_payload(b'{"type": "ping"}')        # after the close as well: nothing raised
    client.send({"type": "ping"})


class CountingReads:
    """A TLS object that counts its reads (everything else is the real one's)."""

    def __init__(self, real):
        self.real = real
        self.reads = 0

    def read(self, *args):
        self.reads += 1
        return self.real.read(*args)

    def __getattr__(self, name):
        return getattr(self.real, name)


def next_ready(link):
    """The next message a reader woken by the socket would get, waiting for readability as its watcher does."""
    with gevent.Timeout(10):
        while True:
            message = link.receive_ready()
            if message is not None:
                return message
            gevent.socket.wait_read(link.sock.fileno())


def test_a_reader_stops_at_a_frames_end_without_a_read_that_finds_nothing(tls_pair):
    client, server, _ = tls_pair
    counting = server.sock._sslobj = CountingReads(server.sock._sslobj)
    client.send({"type": "heartbeat"})
    gevent.socket.wait_read(server.sock.fileno(), 10)
    assert server.receive_ready() == {"type": "heartbeat"}
    assert server.receive_ready() is None
    assert counting.reads == 1          # the frame's record; no second read to learn there is no more
    # Nothing is left behind: frames that follow at once, and one of many records, still come.
    big = "z" * 100000
    client.send({"type": "result", "n": 1})
    client.send({"type": "result", "n": 2, "stdout": big})
    client.send({"type": "result", "n": 3})
    assert [next_ready(server)["n"] for _ in range(3)] == [1, 2, 3]
    assert server.receive_ready() is None
