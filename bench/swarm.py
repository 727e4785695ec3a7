"""A swarm of simulated workers: one process, many connections, the real protocol.

Each simulated worker does the real handshake (TLS, HMAC proofs bound to the master's
certificate; --plaintext for a master with worker_tls off), sends heartbeats, and
answers every `run` at once with a succeeded result without spawning anything, so the
master, not process creation, is what gets measured. Used by bench/scale.py.

    python3 bench/swarm.py --port 7070 --key KEY --count 1000 [--prefix sim] [--plaintext] [--full-stats]

Each simulated worker dials from its own loopback address (127.1.x.y), as real workers
come from their own hosts, and waits between dials as the worker does
(``pcci.worker.backoff``, the default reconnect_min and reconnect_max), so the time to
reconnect after a master restart is the workers' policy plus the handshakes.
"""

import argparse
import os
import random
import resource
import sys
import time

import gevent
import gevent.socket
from gevent.event import Event

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci import protocol, tls  # noqa: E402
from pcci.framing import ConnectionClosed, FrameError  # noqa: E402
from pcci.link import Link  # noqa: E402
from pcci.protocol import HandshakeRefused  # noqa: E402
from pcci.handshake import worker_side as handshake  # noqa: E402
from pcci.config import WORKER_KEYS  # noqa: E402
from pcci.worker.backoff import MasterRotation  # noqa: E402
from pcci.worker.master_link import STABLE_SESSION_SECONDS  # noqa: E402


def source_address(number):
    """A loopback address of its own for simulated worker ``number`` (up to 65,000 of them)."""
    return "127.1.%d.%d" % (number // 250, number % 250 + 1)


class SimulatedWorker:
    def __init__(self, swarm, name, number):
        self.swarm = swarm
        self.name = name
        self.source = source_address(number)
        self.connected = Event()

    def run(self):
        rotation = MasterRotation([("127.0.0.1", self.swarm.port)], WORKER_KEYS["reconnect_min"][0],
                                  WORKER_KEYS["reconnect_max"][0])
        while True:
            started = time.monotonic()
            try:
                self.session()
            except (ConnectionClosed, OSError, FrameError, HandshakeRefused):
                pass
            self.connected.clear()
            gevent.sleep(rotation.after(time.monotonic() - started > STABLE_SESSION_SECONDS, random.random()))

    def session(self):
        # A bare socket, not create_connection: no name lookup on gevent's resolver threads.
        sock = gevent.socket.socket()
        sock.settimeout(30)
        try:
            sock.bind((self.source, 0))
            sock.connect(("127.0.0.1", self.swarm.port))
        except OSError:
            sock.close()
            raise
        cert_fingerprint = ""
        if self.swarm.tls is not None:
            sock = self.swarm.tls.wrap_socket(sock)
            cert_fingerprint = tls.peer_fingerprint(sock)
        sock.settimeout(None)
        link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES)
        try:
            handshake(link, self.swarm.key, self.name, 60, cert_fingerprint)
            link.decoder.max_frame_bytes = 16 * 1024 * 1024
            link.send({"type": protocol.SYNC, "running": []})
            self.connected.set()
            beat = gevent.spawn(self.heartbeats, link)
            try:
                while True:
                    message = link.receive(120)
                    if message["type"] == protocol.RUN:
                        now = int(time.time() * 1000)
                        link.send(protocol.result_message(message["job"], "succeeded", 0, None, now, now,
                                                          "", "", False, False))
                    elif message["type"] == protocol.PING:
                        link.send({"type": protocol.PONG})
            finally:
                beat.kill()
        finally:
            link.close()

    def heartbeats(self, link):
        gevent.sleep(random.random() * self.swarm.heartbeat)
        while True:
            stats = pi_stats(random) if self.swarm.full_stats else {"cpuPercent": 1.0}
            link.send({"type": protocol.HEARTBEAT, "stats": stats, "running": []})
            gevent.sleep(self.swarm.heartbeat)


def pi_stats(rng):
    """Stats shaped as a Raspberry Pi 4's heartbeat (pcci/worker/stats.py), varied a little:
    for the dashboard and /metrics, which show every field."""
    memory_total, disk_total = 4 * 2 ** 30, 32 * 10 ** 9
    available, free = int(memory_total * rng.uniform(0.2, 0.9)), int(disk_total * rng.uniform(0.05, 0.8))
    return {"cpuPercent": round(rng.uniform(0, 100), 1), "cpuCount": 4,
            "loadAverage": [round(rng.uniform(0, 4), 2) for _ in range(3)],
            "memory": {"total": memory_total, "available": available,
                       "percent": round(100 * (1 - available / memory_total), 1)},
            "disk": {"path": "/", "total": disk_total, "free": free, "percent": round(100 * (1 - free / disk_total), 1)},
            "temperature": round(rng.uniform(40, 82), 1), "bootTime": 1764000000}


class Swarm:
    def __init__(self, port, key, count, prefix, heartbeat, plaintext=False, full_stats=False):
        self.port, self.key, self.heartbeat, self.full_stats = port, key, heartbeat, full_stats
        self.tls = None if plaintext else tls.link_client_context()
        self.workers = [SimulatedWorker(self, "%s%05d" % (prefix, n), n) for n in range(count)]

    def start(self):
        for worker in self.workers:
            gevent.spawn(worker.run)
            gevent.sleep(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--prefix", default="sim")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--plaintext", action="store_true", help="for a master with worker_tls: false")
    parser.add_argument("--full-stats", action="store_true", help="heartbeats with every stat a Pi sends")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Swarm(args.port, args.key, args.count, args.prefix, args.heartbeat, args.plaintext, args.full_stats).start()
    gevent.wait()


if __name__ == "__main__":
    main()
