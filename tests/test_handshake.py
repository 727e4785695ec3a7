"""Both halves of the handshake (pcci/handshake.py) talking over socket.socketpair()."""

import gevent
import gevent.socket
import pytest

from pcci import handshake, protocol
from pcci.link import Link
from pcci.protocol import HandshakeRefused

KEY = "a" * 64
OTHER_KEY = "b" * 64
FINGERPRINT = "sha256:" + "0" * 64


def meet(worker_key=KEY, master_key=KEY, node="pi1", master_fingerprint=FINGERPRINT, **hello):
    """Run both sides at once: (what the worker got or raised, what the master got or raised)."""
    worker_sock, master_sock = gevent.socket.socketpair()
    worker_link = Link(worker_sock, protocol.HANDSHAKE_MAX_FRAME_BYTES, "master")
    master_link = Link(master_sock, protocol.HANDSHAKE_MAX_FRAME_BYTES, "worker")

    def master():
        proof, said = handshake.master_side(master_link, master_key, 5, master_fingerprint)
        master_link.send_now(handshake.welcome(proof, 3.0))
        return said

    def refusing_master():
        try:
            return master()
        except HandshakeRefused as exc:
            master_link.send_now(protocol.error(exc.code, exc.message))
            raise

    def worker():
        return handshake.worker_side(worker_link, worker_key, node, 5, FINGERPRINT, **hello)

    try:
        sides = [gevent.spawn(worker), gevent.spawn(refusing_master)]
        gevent.joinall(sides, timeout=10)
        return [side.value if side.successful() else side.exception for side in sides]
    finally:
        worker_link.close()
        master_link.close()


def test_a_worker_and_a_master_holding_the_key_learn_who_the_other_is():
    welcome, hello = meet(labels={"rack": "a"}, users=["_pcci-worker"], instance="f00d")
    assert welcome["type"] == protocol.WELCOME and welcome["heartbeatTimeout"] == 3.0
    assert hello == handshake.Hello("pi1", frozenset(protocol.FEATURES), {"rack": "a"}, ["_pcci-worker"], "f00d")


def test_a_worker_with_another_key_is_refused_and_told_why():
    refused, master_refused = meet(worker_key=OTHER_KEY)
    assert isinstance(refused, HandshakeRefused) and refused.code == "bad_key"
    assert master_refused.code == "bad_key"


def test_a_master_whose_proof_is_for_another_certificate_is_not_obeyed():
    # What a machine in the middle, presenting its own certificate, would send on.
    refused, _ = meet(master_fingerprint="sha256:" + "1" * 64)
    assert isinstance(refused, HandshakeRefused) and refused.code == "bad_key"


@pytest.mark.parametrize("node,code", [("", "bad_node_name"), ("a/b", "bad_node_name"), ("x" * 256, "bad_node_name"),
                                       ("line\nbreak", "bad_node_name")])
def test_a_name_the_master_cannot_keep_is_refused(node, code):
    refused, master_refused = meet(node=node)
    assert refused.code == code and master_refused.code == code


def test_labels_that_are_not_labels_are_refused():
    refused, _ = meet(labels={"": "x"})
    assert refused.code == "bad_labels"


def test_a_message_that_lacks_its_fields_is_a_protocol_error():
    with pytest.raises(protocol.ProtocolError, match="'nonce'"):
        protocol.checked({"type": protocol.CHALLENGE}, protocol.CHALLENGE)
    with pytest.raises(protocol.ProtocolError, match="expected a 'auth' message"):
        protocol.checked({"type": protocol.HELLO, "node": "x", "nonce": "y"}, protocol.AUTH)
