"""The master process: store, registry, pools, the worker port and the REST API, until SIGTERM."""

import gc
import logging
import os
import resource
import signal

import gevent
from gevent.event import Event
from gevent.pywsgi import LoggingLogAdapter, WSGIServer
from gevent.server import StreamServer

from .. import config as config_module
from ..clock import wall_ms
from ..durable_files import make_directories
from ..link import tune_socket
from .api import build_app
from .persister import Persister
from .pool_core import PoolCore
from .pool_ids import PoolIdMaker
from .pools import PoolService
from .registry import Registry
from .retention import purge_loop
from .store import Store, ThreadedStore
from .worker_port import WorkerPort

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WORKER_BACKLOG = 4096
GC_THRESHOLDS = (100000, 50, 100)
# How long a stopping master waits for the store to take the last changes.
SHUTDOWN_FLUSH_SECONDS = 5.0


def api_host(cfg, tokens):
    """Without a token the API may only listen on loopback."""
    if tokens or cfg.api_host in LOOPBACK:
        return cfg.api_host
    log.warning("no api_tokens configured: the REST API listens on 127.0.0.1 only, not %s; "
                "add a token to serve other hosts", cfg.api_host)
    return "127.0.0.1"


class ApiServer(WSGIServer):
    """API connections get no Nagle delay -- pywsgi may write a response's headers and
    body separately, and on keep-alive Nagle then waits for the client's delayed ACK
    (~40 ms a response) -- and a timeout on each read and write, so a client that stops
    sending mid-request or idles on keep-alive lets its connection go."""

    def __init__(self, listener, application, idle_timeout, **kwargs):
        super().__init__(listener, application, **kwargs)
        self.idle_timeout = idle_timeout

    def handle(self, sock, address):
        tune_socket(sock)
        sock.settimeout(self.idle_timeout)
        return super().handle(sock, address)


def _ssl_args(cert, key):
    return {"certfile": cert, "keyfile": key} if cert else {}


def tune_garbage_collector():
    """The master's heap is mostly long-lived (a session and a record per worker, the
    running pools), and with CPython's default thresholds (700, 10, 10) the collector
    re-scans it every few thousand allocations: at 10,000 workers that cost a fifth of
    the result rate (bench/scale.py, docs/performance.md). Nearly all garbage here is
    freed by reference counting; collect cycles far less often."""
    gc.set_threshold(*GC_THRESHOLDS)


def raise_open_file_limit():
    """One socket per worker: take the hard limit on open files, not the soft 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run(cfg):
    key = config_module.read_cluster_key(cfg)
    tokens = config_module.read_api_tokens(cfg)
    raise_open_file_limit()
    tune_garbage_collector()
    make_directories(cfg.state_dir)
    store = ThreadedStore(Store(os.path.join(cfg.state_dir, "pcci.sqlite3")))
    store.open()

    started_ms = wall_ms()
    registry = Registry()
    registry.load(store.workers(), started_ms)
    core = PoolCore(registry, int(cfg.lost_after * 1000), started_ms, PoolIdMaker().make, cfg.max_pool_jobs,
                    cfg.max_worker_backlog)
    persister = Persister(store, clock=wall_ms)
    pools = PoolService(core, store, registry, persister, wall_ms)
    pools.restore()

    port = WorkerPort(cfg, key, registry, pools, persister, wall_ms)
    # A deep accept queue: after a master restart every worker dials in within seconds.
    worker_server = StreamServer((cfg.worker_host, cfg.worker_port), port.handle, backlog=WORKER_BACKLOG,
                                 **_ssl_args(cfg.worker_tls_cert, cfg.worker_tls_key))
    host = api_host(cfg, tokens)
    if not tokens:
        log.warning("no api_tokens configured: anyone on this machine can use the API")
    app = build_app(cfg, pools, registry, persister, tokens, started_ms)
    # The server's own complaints are about clients (a garbled request line): info, not error.
    api_server = ApiServer((host, cfg.api_port), app, cfg.api_idle_timeout, log=None,
                           error_log=LoggingLogAdapter(logging.getLogger("pcci.http"), logging.INFO),
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
    if not persister.flush(timeout=SHUTDOWN_FLUSH_SECONDS):
        log.error("stopping with %d change(s) not saved: %s; workers keep their unacknowledged results",
                  persister.backlog, persister.last_error or "the store did not answer in time")
    persister.stop()
    store.shutdown()
    log.info("master stopped")
    return 0


def _sweep_loop(pools, lost_after):
    while True:
        gevent.sleep(min(30.0, max(0.2, lost_after / 4)))
        pools.sweep_lost()
