"""A swarm of simulated workers: one process, many connections, the real protocol.

Each simulated worker does the real handshake (HMAC proofs), sends heartbeats, and
answers every `run` at once with a succeeded result without spawning anything, so the
master, not process creation, is what gets measured. Used by bench/scale.py.

    python3 bench/swarm.py --port 7070 --key KEY --count 1000 [--prefix sim]
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
from pcci import protocol  # noqa: E402
from pcci.framing import ConnectionClosed, FrameError  # noqa: E402
from pcci.link import Link  # noqa: E402
from pcci.protocol import HandshakeRefused  # noqa: E402
from pcci.worker.master_link import handshake  # noqa: E402


class SimulatedWorker:
    def __init__(self, swarm, name):
        self.swarm = swarm
        self.name = name
        self.connected = Event()

    def run(self):
        attempt = 0
        while True:
            try:
                self.session()
            except (ConnectionClosed, OSError, FrameError, HandshakeRefused):
                pass
            self.connected.clear()
            attempt += 1
            gevent.sleep(random.random() * min(5.0, 0.2 * 2 ** min(attempt, 5)))

    def session(self):
        sock = gevent.socket.create_connection(("127.0.0.1", self.swarm.port), timeout=30)
        sock.settimeout(None)
        link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES)
        try:
            handshake(link, self.swarm.key, self.name, 60)
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
            link.send({"type": protocol.HEARTBEAT, "stats": {"cpuPercent": 1.0}, "running": []})
            gevent.sleep(self.swarm.heartbeat)


class Swarm:
    def __init__(self, port, key, count, prefix, heartbeat):
        self.port, self.key, self.heartbeat = port, key, heartbeat
        self.workers = [SimulatedWorker(self, "%s%05d" % (prefix, n)) for n in range(count)]

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
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Swarm(args.port, args.key, args.count, args.prefix, args.heartbeat).start()
    gevent.wait()


if __name__ == "__main__":
    main()
