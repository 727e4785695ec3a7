"""Both halves of the worker link's handshake: each side proves it holds the cluster key.

    worker                                  master
      hello {node, nonce, version, ...}  ->
                                         <-  challenge {nonce}
      auth {proof}                       ->
                                         <-  welcome {proof, heartbeatTimeout, features}

Each proof is an HMAC of both nonces, the node name and the fingerprint of the master's
TLS certificate (``auth``), so a proof is good for one connection to one certificate
only. Either side refuses with an ``error`` frame ({code, message}, and ``leader`` from a
standby), which the other raises as ``HandshakeRefused``. The link, its TLS and the
deadline around the whole exchange are the callers' (``pcci.master.worker_port``,
``pcci.worker.master_link``); these functions only read and write frames, so they are
tested over ``socket.socketpair()``.
"""

import collections

from . import auth, protocol
from .framing import ConnectionClosed
from .logs import said
from .protocol import HandshakeRefused
from .targets import check_labels

MAX_NODE_NAME_CHARS = 255


# Who a worker said it is, once it has proved the key: its name, features (a frozenset),
# labels, users and instance (its process, protocol.instance; None from an older worker),
# and its relay listener ({port, fingerprint}, protocol.relay_endpoint; None: it serves none).
# A namedtuple, not typing's: typing costs a worker 1 MB of memory for nothing at run time.
Hello = collections.namedtuple("Hello", "name features labels users instance relay", defaults=(None,))


def worker_side(link, key: str, node: str, timeout: float, cert_fingerprint: str, labels=None, users=None,
                instance: "str | None" = None, relay=None) -> dict:
    """The worker's half: the master's welcome, or HandshakeRefused. ``cert_fingerprint`` is
    that of the certificate this link's TLS session presented ("" in plaintext); ``instance``
    names this worker process (protocol.instance); ``relay`` its relay listener ({port,
    fingerprint}) if it serves relayed copies. bench/swarm.py uses it too, so simulated
    workers speak exactly this protocol."""
    nonce = auth.new_nonce()
    link.send_now({"type": protocol.HELLO, "node": node, "nonce": nonce, "version": protocol.VERSION,
                   "features": list(protocol.FEATURES), "labels": labels or {}, "users": users or [],
                   **({"instance": instance} if instance else {}), **({"relay": relay} if relay else {})})
    challenge = link.receive(timeout)
    if challenge.get("type") == protocol.ERROR:
        raise refused_by(challenge)
    protocol.checked(challenge, protocol.CHALLENGE)
    link.send_now({"type": protocol.AUTH,
                   "proof": auth.worker_proof(key, challenge["nonce"], nonce, node, cert_fingerprint)})
    welcome = link.receive(timeout)
    if welcome.get("type") == protocol.ERROR:
        raise refused_by(welcome)
    protocol.checked(welcome, protocol.WELCOME)
    expected = auth.master_proof(key, nonce, challenge["nonce"], node, cert_fingerprint)
    if not auth.proofs_match(expected, welcome["proof"]):
        try:
            link.send_now(protocol.error("bad_key", "the master's key proof is wrong"), timeout=1.0)
        except ConnectionClosed:
            pass
        raise HandshakeRefused("bad_key", "the master did not prove it holds the cluster key for this "
                                          "connection's certificate; refusing to take orders from it")
    return welcome


def refused_by(message: dict) -> HandshakeRefused:
    """The refusal an ``error`` frame from the other side stands for."""
    leader = message.get("leader")
    return HandshakeRefused(str(message.get("code")), str(message.get("message")),
                            leader=leader if isinstance(leader, str) else None)


def master_side(link, key: str, timeout: float, cert_fingerprint: str):
    """The master's half, up to the worker's proof: (the master's proof for the welcome,
    Hello), or HandshakeRefused. ``timeout`` bounds each read."""
    hello = protocol.checked(link.receive(timeout), protocol.HELLO)
    name = hello["node"]
    if hello.get("version") != protocol.VERSION:
        raise HandshakeRefused("version_mismatch", "worker %r speaks protocol version %r, this master %d; "
                               "install the same PCCI release on both" % (name[:300], hello.get("version"),
                                                                          protocol.VERSION))
    if (not name or len(name) > MAX_NODE_NAME_CHARS or "/" in name or not name.isprintable()
            or not protocol.storable(name)):
        raise HandshakeRefused("bad_node_name", "node name %r must be 1-255 printable characters without '/'"
                               % name[:300])
    labels = hello.get("labels") or {}
    problems = check_labels(labels)
    if problems:
        raise HandshakeRefused("bad_labels", "worker %r: %s" % (name, "; ".join(problems)[:500]))
    nonce = auth.new_nonce()
    link.send_now({"type": protocol.CHALLENGE, "nonce": nonce})
    reply = link.receive(timeout)
    if reply.get("type") == protocol.ERROR:
        raise HandshakeRefused(said(reply.get("code"), 40), "worker %r gave up the handshake: %s"
                               % (name, said(reply.get("message"))))
    protocol.checked(reply, protocol.AUTH)
    expected = auth.worker_proof(key, nonce, hello["nonce"], name, cert_fingerprint)
    if not auth.proofs_match(expected, reply["proof"]):
        raise HandshakeRefused("bad_key", "worker %r failed the cluster key check; is its cluster key the "
                               "master's, and is nothing between them presenting another certificate?" % name)
    return (auth.master_proof(key, hello["nonce"], nonce, name, cert_fingerprint),
            Hello(name, frozenset(protocol.features(hello)), labels, protocol.user_names(hello),
                  protocol.instance(hello), protocol.relay_endpoint(hello)))


def welcome(proof: str, heartbeat_timeout: float) -> dict:
    """The master's last word: its proof, how long it waits for a heartbeat, its features."""
    return {"type": protocol.WELCOME, "version": protocol.VERSION, "proof": proof,
            "heartbeatTimeout": heartbeat_timeout, "features": list(protocol.FEATURES)}
