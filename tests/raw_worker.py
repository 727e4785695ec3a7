"""A worker that speaks the protocol by hand on a blocking socket, for tests that need
it to send what no real worker sends (malformed stats, say). It completes the real
handshake with the cluster key, syncs, and then sends whatever frames it is given."""

import json

from conftest import KEY, dial_worker_port
from pcci import auth, framing, protocol


class RawWorker:
    def __init__(self, port, name, key=KEY, labels=None, timeout=10, features=(), relay=None):
        self.name = name
        self.sock, fingerprint = dial_worker_port(port, timeout=timeout)
        self.decoder = framing.FrameDecoder()
        self.pending = []
        nonce = auth.new_nonce()
        self.send({"type": protocol.HELLO, "node": name, "nonce": nonce, "version": protocol.VERSION,
                   "features": list(features), "labels": labels or {}, "users": [],
                   **({"relay": relay} if relay else {})})
        challenge = self.receive()
        assert challenge["type"] == protocol.CHALLENGE, challenge
        self.send({"type": protocol.AUTH, "proof": auth.worker_proof(key, challenge["nonce"], nonce, name,
                                                                        fingerprint)})
        welcome = self.receive()
        assert welcome["type"] == protocol.WELCOME, welcome
        self.send({"type": protocol.SYNC, "running": []})

    def send(self, message):
        """Send a message; a str is sent as the payload's JSON text as it is (lone surrogates,
        NaN, whatever the test wants), a dict is encoded as JSON with only ASCII escapes."""
        text = message if isinstance(message, str) else json.dumps(message)
        payload = text.encode("utf-8")
        self.sock.sendall(framing.HEADER.pack(len(payload)) + payload)

    def heartbeat(self, stats, running=None):
        """A heartbeat carrying ``stats`` (any JSON value, or raw JSON text); its pong."""
        body = stats if isinstance(stats, str) else json.dumps(stats)
        self.send('{"type":"heartbeat","stats":%s,"running":%s}' % (body, json.dumps(running or [])))
        return self.receive_type(protocol.PONG)

    def receive(self):
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the master closed the link")
            self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    def receive_type(self, kind, limit=100):
        """The next message of this type, answering pings on the way (bounded)."""
        for _ in range(limit):
            message = self.receive()
            if message["type"] == kind:
                return message
            if message["type"] == protocol.PING:
                self.send({"type": protocol.PONG})
        raise AssertionError("no %r message among %d" % (kind, limit))

    def close(self):
        self.sock.close()
