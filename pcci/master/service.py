"""The master process: store, registry, pools, the worker port and the REST API, until SIGTERM."""

import gc
import logging
import os
import resource
import signal
import ssl

import gevent
from gevent.event import Event

from .. import config as config_module
from .. import service_manager, tls
from ..clock import wall_ms
from ..durable_files import make_directories
from ..errors import ConfigError
from .api import build_app
from .api_edge import ApiEdge
from .api_server import ApiServer, api_host, api_tls
from .cluster_events import ClusterEvents
from .live_output import PoolFeeds
from .metrics import Metrics, load_client
from .persister import Persister
from .pool_core import PoolCore
from .pool_ids import PoolIdMaker
from .pools import PoolService
from .registry import Registry
from .retention import purge_loop
from .store import Store, ThreadedStore
from .worker_port import WorkerPort, WorkerServer

log = logging.getLogger(__name__)

WORKER_BACKLOG = 4096
GC_THRESHOLDS = (100000, 50, 100)
# How long a stopping master waits for the store to take the last changes.
SHUTDOWN_FLUSH_SECONDS = 5.0


def worker_link_tls(cfg):
    """The worker port's TLS context and certificate fingerprint; a certificate of its own is
    made in state_dir/tls at first start unless the config names one. (None, "") when
    worker_tls is off, which is logged as loudly as it deserves."""
    if not cfg.worker_tls:
        log.warning("worker_tls is false: the worker link is PLAINTEXT. Anyone on the network can read every "
                    "command and its output and inject commands into a live session. Use this only to debug.")
        return None, ""
    cert, key = cfg.worker_tls_cert, cfg.worker_tls_key
    if not cert:
        cert = os.path.join(cfg.state_dir, "tls", "worker-link.crt")
        key = os.path.join(cfg.state_dir, "tls", "worker-link.key")
        tls.ensure_certificate(cert, key, "pcci-master worker link")
    context = tls.server_context(cert, key, minimum=ssl.TLSVersion.TLSv1_3)
    fingerprint = tls.file_fingerprint(cert)
    log.info("worker link: TLS with certificate %s (%s)", cert, fingerprint)
    return context, fingerprint


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
    store_path = os.path.join(cfg.state_dir, "pcci.sqlite3")
    store = ThreadedStore(Store(store_path))
    store.open()

    started_ms = wall_ms()
    registry = Registry()
    registry.load(store.workers(), started_ms)
    core = PoolCore(registry, int(cfg.lost_after * 1000), started_ms, PoolIdMaker().make, cfg.max_pool_jobs,
                    cfg.max_worker_backlog, groups=cfg.groups)
    persister = Persister(store, clock=wall_ms)
    events = ClusterEvents(registry)
    # No worker can send more of a stream than one result frame could carry.
    feeds = PoolFeeds(config_module.largest_output_cap(cfg.max_frame_bytes))
    client = load_client()
    metrics = client and Metrics(client, registry, core, persister, store_path, wall_ms)
    pools = PoolService(core, store, registry, persister, wall_ms, feeds, events, metrics)
    pools.restore()

    link_tls, link_fingerprint = worker_link_tls(cfg)
    port = WorkerPort(cfg, key, registry, pools, persister, wall_ms, link_tls, link_fingerprint, events)
    # A deep accept queue: after a master restart every worker dials in within seconds.
    worker_server = WorkerServer((cfg.worker_host, cfg.worker_port), port, backlog=WORKER_BACKLOG)
    host = api_host(cfg, tokens)
    if not tokens:
        log.warning("no api_tokens configured: anyone on this machine can use the API")
    edge = ApiEdge(tokens, on_answer=metrics and metrics.api_answered)
    app = build_app(cfg, pools, registry, persister, edge, started_ms, events, metrics)
    api_context = api_tls(cfg, host)
    api_server = ApiServer((host, cfg.api_port), app, cfg, **({"ssl_context": api_context} if api_context else {}))
    worker_server.start()
    api_server.start()
    log.info("master listening: API on %s://%s:%d, workers on %s:%d, state in %s",
             "https" if api_context else "http", host, api_server.server_port,
             cfg.worker_host, worker_server.server_port, cfg.state_dir)
    watchdog = service_manager.ready("API on %s:%d, workers on %s:%d" % (host, api_server.server_port,
                                                                       cfg.worker_host, worker_server.server_port))

    background = [gevent.spawn(purge_loop, store, cfg.pool_retention, cfg.max_pools, wall_ms, pools.forget_recent),
                  gevent.spawn(_sweep_loop, pools, cfg.lost_after)]
    stopping = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(reload_tokens, cfg.source, edge))
    stopping.wait()

    log.info("stopping")
    service_manager.stopping()
    if watchdog is not None:
        watchdog.kill()
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


def reload_tokens(config_path, edge):
    """SIGHUP: read the API tokens again (api_tokens and api_tokens_file), so they can be
    rotated without a restart. A file that does not read, or that would leave a master with
    tokens tokenless (it may be listening off loopback), keeps the tokens in use."""
    try:
        tokens = config_module.read_api_tokens(config_module.load_master(config_path))
    except ConfigError as exc:
        log.error("reload: kept the API tokens in use; %s", "; ".join(exc.problems))
        return
    if edge.tokens and not tokens:
        log.error("reload: kept the API tokens in use; the new configuration has none, which would open the API")
        return
    edge.tokens = tokens
    log.info("reload: %d API token(s): %s (other settings take a restart)", len(tokens),
             ", ".join("%s (%s)" % (t.name, t.scope) for t in tokens))


def _sweep_loop(pools, lost_after):
    # Lost jobs: a scan of every running job, a quarter of lost_after apart (at most 30 s).
    # Queue timeouts: every second, as exact as that, and cheap (no job is scanned).
    interval = min(30.0, max(0.2, lost_after / 4))
    since_sweep = 0.0
    while True:
        gevent.sleep(1.0 if interval > 1.0 else interval)
        pools.expire_queues()
        since_sweep += 1.0 if interval > 1.0 else interval
        if since_sweep >= interval:
            since_sweep = 0.0
            pools.sweep_lost()
