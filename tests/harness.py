"""The real master in the test's own process: for tests of what the master decides.

``InProcessMaster`` is built by ``pcci.master.assembly.build_active``, exactly as the
daemon builds it -- pool service, worker port with its TLS and handshake, the REST app
behind its ApiEdge, a SQLite store -- and serves on loopback ports from this process's
gevent hub. ``FakeWorker`` is a worker as bench/swarm.py simulates one: the real
handshake and link, heartbeats, and each ``run`` answered by running the command with
``sh -c`` (no spool, cgroup, user switch, timeout or kill: tests of those start the real
worker, tests/conftest.py ``cluster``).

Everything here runs on gevent, so every wait in a test that uses it must yield to the hub
(``api``, ``run`` and ``wait_online`` here do; conftest's ``wait_until`` sleeps the whole
process). It starts no process but ``sh`` and, once per test run, ``openssl``: such tests
belong to the fast tier.
"""

import functools
import http.client
import json
import os
import subprocess
import tempfile

import gevent
import gevent.socket

from conftest import KEY, MasterCalls, wait_until
from pcci import config, protocol, secret_files, tls
from pcci.clock import wall_ms
from pcci.framing import ConnectionClosed, FrameError
from pcci.link import Link
from pcci.master.api_server import ApiServer
from pcci.master.assembly import build_active, start_loops
from pcci.master.service import worker_link_tls
from pcci.master.store import Store, ThreadedStore
from pcci.master.worker_port import WorkerServer
from pcci.protocol import HandshakeRefused
from pcci.handshake import worker_side as handshake

_CERTIFICATE = []       # (cert, key): one for the whole test run, openssl is not cheap


def link_certificate():
    if not _CERTIFICATE:
        directory = tempfile.mkdtemp(prefix="pcci-harness-")
        cert, key = os.path.join(directory, "link.crt"), os.path.join(directory, "link.key")
        tls.ensure_certificate(cert, key, "pcci-master worker link")
        _CERTIFICATE.append((cert, key))
    return _CERTIFICATE[0]


class _GeventConnection(http.client.HTTPConnection):
    """http.client on gevent's sockets, so a request lets the master in this process answer it."""

    def connect(self):
        self.sock = gevent.socket.create_connection((self.host, self.port), self.timeout)


class InProcessMaster(MasterCalls):
    """An active master on loopback in this process; talk to it as tests talk to ``Cluster``."""

    def __init__(self, base, **overrides):
        cert, key = link_certificate()
        settings = {"cluster_key": KEY, "state_dir": os.path.join(str(base), "master-state"), "api_port": 0,
                    "worker_host": "127.0.0.1", "worker_port": 0, "heartbeat_timeout": "3s"}
        if overrides.get("worker_tls", True):
            settings.update(worker_tls_cert=cert, worker_tls_key=key)
        settings.update(overrides)
        self.config = cfg = config.validate(settings, config.MASTER_KEYS, "harness")
        os.makedirs(cfg.state_dir, exist_ok=True)
        tokens = secret_files.read_api_tokens(cfg)
        first = (settings.get("api_tokens") or [None])[0]
        self.token = first["token"] if isinstance(first, dict) else first
        self.store = ThreadedStore(Store(os.path.join(cfg.state_dir, "pcci.sqlite3")))
        self.store.open()
        link_tls, fingerprint = worker_link_tls(cfg)
        self.master = build_active(cfg, KEY, tokens, self.store, wall_ms, wall_ms(), link_tls, fingerprint)
        self.api_server = ApiServer(("127.0.0.1", 0), self.master.app, cfg)
        self.api_server.start()
        self.worker_server = WorkerServer(("127.0.0.1", 0), self.master.port)
        self.worker_server.start()
        self.api_port, self.worker_port = self.api_server.server_port, self.worker_server.server_port
        self.loops = start_loops(cfg, self.store, self.master, wall_ms)
        self.workers = {}

    def stop(self):
        for worker in self.workers.values():
            worker.stop()
        self.api_server.close()
        self.worker_server.close()
        gevent.killall(self.loops)
        self.master.persister.flush(timeout=5)
        self.master.persister.stop()
        self.store.shutdown()

    # -- workers --------------------------------------------------------------------------
    def start_worker(self, name, wait=True):
        worker = self.workers[name] = FakeWorker(self.worker_port, name)
        if wait:
            self.wait_online(name)
        return worker

    # conftest.wait_until, yielding to the hub between tries.
    wait_until = staticmethod(functools.partial(wait_until, sleep=gevent.sleep))

    # -- HTTP ---------------------------------------------------------------------------------
    def api(self, method, path, body=None, token="default", raw=None, headers=None, timeout=30):
        """(status, parsed JSON) for one call, as ``conftest.Cluster.api``."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = dict(headers or {})
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = "Bearer " + token
        connection = _GeventConnection("127.0.0.1", self.api_port, timeout=timeout)
        try:
            connection.request(method, path, data, headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


class FakeWorker:
    """One simulated worker on its own greenlet, connected until ``stop``."""

    HEARTBEAT_SECONDS = 0.5

    def __init__(self, port, name):
        self.port, self.name = port, name
        self.link = None
        self.greenlet = gevent.spawn(self._session)

    def _session(self):
        sock = gevent.socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock = tls.link_client_context().wrap_socket(sock)
        self.link = link = Link(sock, protocol.HANDSHAKE_MAX_FRAME_BYTES)
        try:
            handshake(link, KEY, self.name, 10, tls.peer_fingerprint(sock))
            link.decoder.max_frame_bytes = 16 * 1024 * 1024
            link.send({"type": protocol.SYNC, "running": []})
            beat = gevent.spawn(self._heartbeats, link)
            try:
                while True:
                    message = link.receive(60)
                    if message["type"] == protocol.RUN:
                        gevent.spawn(self._run, link, message)
                    elif message["type"] == protocol.PING:
                        link.send({"type": protocol.PONG})
            finally:
                beat.kill()
        except (ConnectionClosed, FrameError, HandshakeRefused, OSError):
            pass
        finally:
            link.close()

    def _heartbeats(self, link):
        while True:
            link.send({"type": protocol.HEARTBEAT, "stats": {"cpuPercent": 1.0}, "running": []})
            gevent.sleep(self.HEARTBEAT_SECONDS)

    @staticmethod
    def _run(link, message):
        started = wall_ms()
        env = dict(os.environ, **(message.get("env") or {}))
        # On a thread, not gevent.subprocess: that installs a SIGCHLD handler which reaps the
        # children of every later test in this process.
        done = gevent.get_hub().threadpool.spawn(subprocess.run, ["/bin/sh", "-c", message["cmd"]],
                                                 capture_output=True, env=env, cwd=message.get("cwd"), timeout=60)
        done = done.get()
        code = done.returncode
        link.send(protocol.result_message(message["job"], "succeeded" if code == 0 else "failed", code, None,
                                          started, wall_ms(), done.stdout.decode(errors="replace"),
                                          done.stderr.decode(errors="replace"), False, False))

    def stop(self):
        self.greenlet.kill()
        if self.link is not None:
            self.link.close()
