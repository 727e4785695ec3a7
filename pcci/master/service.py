"""The master process: store, registry, pools, the worker port and the REST API, until SIGTERM."""

import logging
import os
import resource
import signal

import gevent
from gevent.event import Event
from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer

from .. import config as config_module
from ..connection import tune_socket
from .api import build_app
from .links import WorkerPort
from .persister import Persister
from .pools import PoolManager, wall_ms
from .registry import Registry
from .retention import purge_loop
from .store import Store, ThreadedStore

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WORKER_BACKLOG = 4096


def api_host(cfg):
    """Without a token the API may only listen on loopback."""
    if cfg.api_tokens or cfg.api_host in LOOPBACK:
        return cfg.api_host
    log.warning("no api_tokens configured: the REST API listens on 127.0.0.1 only, not %s; "
                "add a token to serve other hosts", cfg.api_host)
    return "127.0.0.1"


class ApiServer(WSGIServer):
    """API connections get no Nagle delay -- pywsgi may write a response's headers and
    body separately, and on keep-alive Nagle then waits for the client's delayed ACK
    (~40 ms a response) -- and a timeout on each read and write, so a client that stops
    sending mid-request or idles on keep-alive lets its connection go."""

    idle_timeout = 60.0

    def handle(self, sock, address):
        tune_socket(sock)
        sock.settimeout(self.idle_timeout)
        return super().handle(sock, address)


def _ssl_args(cert, key):
    return {"certfile": cert, "keyfile": key} if cert else {}


def raise_open_file_limit():
    """One socket per worker: take the hard limit on open files, not the soft 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run(cfg):
    key = config_module.read_cluster_key(cfg)
    raise_open_file_limit()
    cfg.api_tokens = config_module.read_api_tokens(cfg)
    os.makedirs(cfg.state_dir, mode=0o750, exist_ok=True)
    raw_store = Store(os.path.join(cfg.state_dir, "pcci.sqlite3"))
    store = ThreadedStore(raw_store)
    store.open()

    registry = Registry()
    registry.load(store.workers(), wall_ms())
    persister = Persister(store)
    pools = PoolManager(store, registry, persister, cfg.lost_after)
    pools.restore()

    port = WorkerPort(cfg, key, registry, pools, store, wall_ms)
    # A deep accept queue: after a master restart every worker dials in within seconds.
    worker_server = StreamServer((cfg.worker_host, cfg.worker_port), port.handle, backlog=WORKER_BACKLOG,
                                 **_ssl_args(cfg.worker_tls_cert, cfg.worker_tls_key))
    host = api_host(cfg)
    if not cfg.api_tokens:
        log.warning("no api_tokens configured: anyone on this machine can use the API")
    app = build_app(cfg, pools, registry, wall_ms())
    ApiServer.idle_timeout = cfg.api_idle_timeout
    api_server = ApiServer((host, cfg.api_port), app, log=None, error_log=logging.getLogger("pcci.http"),
                            **_ssl_args(cfg.api_tls_cert, cfg.api_tls_key))
    worker_server.start()
    api_server.start()
    log.info("master listening: API on %s://%s:%d, workers on %s:%d, state in %s",
             "https" if cfg.api_tls_cert else "http", host, api_server.server_port,
             cfg.worker_host, worker_server.server_port, cfg.state_dir)

    background = [gevent.spawn(purge_loop, store, cfg.pool_retention, cfg.max_pools, wall_ms, pools.forget_recent),
                  gevent.spawn(_sweep_loop, pools, cfg.lost_after)]
    stopping = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    stopping.wait()

    log.info("stopping")
    api_server.close()
    worker_server.close()
    gevent.killall(background)
    persister.flush()
    persister.stop()
    store.shutdown()
    log.info("master stopped")
    return 0


def _sweep_loop(pools, lost_after):
    while True:
        gevent.sleep(min(30.0, max(0.2, lost_after / 4)))
        pools.sweep_lost()
