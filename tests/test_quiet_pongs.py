"""A heartbeat after other frames needs no pong (protocol.QUIET_PONGS): the master leaves
it unanswered for a worker that named the feature, and answers every heartbeat of one
that did not (an older worker, or one whose link_timeout is too short for it)."""


import gevent
import gevent.socket
import pytest

from conftest import KEY
from harness import InProcessMaster
from pcci import protocol, tls
from pcci.handshake import worker_side as handshake
from pcci.link import Link


@pytest.fixture
def master(tmp_path):
    served = InProcessMaster(tmp_path)
    yield served
    served.stop()


def connected(port, name, features):
    """A worker's link, in and synced, that named ``features`` in its hello."""
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = tls.link_client_context().wrap_socket(sock)
    link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES)
    handshake(link, KEY, name, 10, tls.peer_fingerprint(sock), features=features)
    link.decoder.max_frame_bytes = 1 << 20
    link.send({"type": protocol.SYNC, "running": []})
    return link


def beat(link):
    link.send({"type": protocol.HEARTBEAT, "stats": {"cpuPercent": 1.0}, "running": []})


def next_frame(link, seconds=0.5):
    """The next message within ``seconds``, or None."""
    try:
        return link.receive(seconds)
    except Exception as exc:        # ConnectionClosed for "nothing received"
        if "nothing received" in str(exc):
            return None
        raise


def heartbeats_around_a_job(served, link, name):
    """What the master sends after: a heartbeat; a job (its run frame); a heartbeat; another."""
    served.wait_online(name)
    beat(link)
    first = next_frame(link, 5)
    status, pool = served.api("POST", "/job", {"cmd": "true", "workers": [name]})
    assert status == 202, pool
    run = next_frame(link, 5)
    assert run["type"] == protocol.RUN
    beat(link)
    second = next_frame(link)
    beat(link)
    third = next_frame(link, 5)
    return [first, second, third]


def test_a_heartbeat_after_a_run_frame_is_not_answered_when_the_worker_named_quiet_pongs(master):
    link = connected(master.worker_port, "quiet", list(protocol.FEATURES))
    pong = {"type": protocol.PONG}
    assert heartbeats_around_a_job(master, link, "quiet") == [pong, None, pong]
    link.close()


def test_a_worker_that_did_not_name_it_gets_a_pong_for_every_heartbeat(master):
    older = [name for name in protocol.FEATURES if name != protocol.QUIET_PONGS]
    link = connected(master.worker_port, "older", older)
    pong = {"type": protocol.PONG}
    assert heartbeats_around_a_job(master, link, "older") == [pong, pong, pong]
    link.close()


def test_a_worker_names_quiet_pongs_only_when_its_link_timeout_spans_three_heartbeats():
    assert protocol.QUIET_PONGS in protocol.hello_features(20.0, 5.0)       # the defaults
    assert protocol.QUIET_PONGS in protocol.hello_features(15.0, 5.0)
    assert protocol.QUIET_PONGS not in protocol.hello_features(14.9, 5.0)
    assert set(protocol.hello_features(1.0, 5.0)) == set(protocol.FEATURES) - {protocol.QUIET_PONGS}
