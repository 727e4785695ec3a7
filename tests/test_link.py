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
