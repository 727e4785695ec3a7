"""The master process: store, registry, pools, the worker port and the REST API, until SIGTERM."""

import gc
import logging
import os
import signal
import socket
import ssl
import sys

import gevent
from gevent.event import Event

from .. import config as config_module
from .. import secret_files, service_manager, store_url, tls
from ..clock import wall_ms
from ..durable_files import make_directories
from ..open_files import raise_open_file_limit
from ..errors import CannotStart, ConfigError
from .api_server import ApiServer, api_host, api_tls
from .assembly import build_active, build_standby, start_loops
from .group_file import read_groups
from .lease import LeaseTerm
from .leadership import Leadership
from .metrics import load_client
from .notify_allow import AllowList, CurrentAllowList
from .store import Store, ThreadedStore
from .worker_port import WorkerServer

log = logging.getLogger(__name__)

WORKER_BACKLOG = 4096
GC_THRESHOLDS = (100000, 50, 100)
# How long a stopping master waits for the store to take the last changes.
SHUTDOWN_FLUSH_SECONDS = 5.0
# max_allowed_packet must hold the largest result row and the statement around it.
MAX_PACKET_HEADROOM = 1024 * 1024


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
    # No session tickets: a worker never resumes (each connection's proofs are bound to a
    # full handshake's certificate), so the two tickets TLS 1.3 sends by default were made,
    # encrypted and sent for nothing at every (re)connect (docs/performance.md, scale).
    context.num_tickets = 0
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


def open_store(cfg):
    """The pool store the config names (SQLite in state_dir, or MariaDB), opened on its thread;
    with MariaDB also the lease board (several masters may share the database)."""
    if not cfg.store_url:
        store = ThreadedStore(Store(os.path.join(cfg.state_dir, "pcci.sqlite3")))
        store.open()
        return store, None
    from .lease_board import LeaseBoard
    from .mariadb_link import Connector, read_password
    from .store_mariadb import MariaDbStore
    target = store_url.parse(cfg.store_url)
    try:
        password = read_password(cfg.store_password_file)
    except OSError as exc:
        raise CannotStart("%s: store_password_file: cannot read %s: %s" % (cfg.source, cfg.store_password_file,
                                                                          exc.strerror))
    backend = MariaDbStore(target, password, cfg.store_tls_ca, spill_dir=cfg.state_dir)
    store = ThreadedStore(backend)
    store.open()
    if backend.max_packet < cfg.max_frame_bytes + MAX_PACKET_HEADROOM:
        log.warning("the database's max_allowed_packet (%d bytes) is below max_frame_bytes (%d) plus a margin: "
                    "a result with that much output could not be stored; raise max_allowed_packet to %d or more",
                    backend.max_packet, cfg.max_frame_bytes, cfg.max_frame_bytes + MAX_PACKET_HEADROOM)
    stall = backend.galera_suspect_seconds
    if stall is not None and stall >= LeaseTerm(cfg.lease_time).length:
        log.warning("Galera stalls commits for up to evs.suspect_timeout (%gs) when a node dies, about as long as "
                    "this master's lease term (lease_time %gs): losing a database node may make the active master "
                    "step down; raise lease_time or lower evs.suspect_timeout (docs/high-availability.md)",
                    stall, cfg.lease_time)
    return store, LeaseBoard(Connector(target, password, cfg.store_tls_ca))


def advertised(cfg, api_scheme, api_port, worker_port):
    """Where clients and workers find this master when it is the active one."""
    def reachable(host):
        return socket.getfqdn() if host in ("0.0.0.0", "::") else host
    return (cfg.advertise_api_url or "%s://%s:%d" % (api_scheme, reachable(cfg.api_host), api_port),
            cfg.advertise_worker_address or "%s:%d" % (reachable(cfg.worker_host), worker_port))


class AppSwitch:
    """The API server's WSGI app, swapped from the standby's to the active one's in place
    (a keep-alive connection opened while standby gets the active answers afterwards);
    ``edge`` is the app's ApiEdge, whose tokens a reload replaces."""

    def __init__(self):
        self.app = self.edge = None

    def switch(self, app, edge):
        self.app, self.edge = app, edge

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def run(cfg):
    key = secret_files.read_cluster_key(cfg)
    tokens = secret_files.read_api_tokens(cfg)
    groups = read_groups(cfg)
    raise_open_file_limit()
    tune_garbage_collector()
    make_directories(cfg.state_dir)
    store, board = open_store(cfg)
    started_ms = wall_ms()
    link_tls, link_fingerprint = worker_link_tls(cfg)
    host = api_host(cfg, tokens)
    if not tokens:
        log.warning("no api_tokens configured: anyone on this machine can use the API")
    client = load_client()
    api_context = api_tls(cfg, host)
    front = AppSwitch()
    api_server = ApiServer((host, cfg.api_port), front, cfg, **({"ssl_context": api_context} if api_context else {}))
    stopping = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    # SIGHUP reads the config again: tokens and notify_allow at once (a standby keeps the
    # new notify_allow for when it takes over); groups once this master is active (a
    # standby resolves no targets).
    notify_allow = CurrentAllowList(cfg.notify_allow)
    latest = [cfg]      # the config as last reloaded: a standby applies its groups and relay_networks on taking over
    reloads = [lambda new: reload_tokens(new, front.edge), lambda new: reload_notify_allow(new, notify_allow),
               lambda new: latest.__setitem__(0, new)]
    gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(reload_config, cfg.source, reloads))

    leadership = None
    if board is not None:
        # Several masters may share this database: serve as a standby until this one holds the lease.
        api_server.init_socket()
        worker_listener = WorkerServer.listener_for((cfg.worker_host, cfg.worker_port), WORKER_BACKLOG)
        api_url, worker_address = advertised(cfg, "https" if api_context else "http", api_server.server_port,
                                             worker_listener.getsockname()[1])
        leadership = Leadership(board, holder_name(cfg), cfg.lease_time, api_url, worker_address)
        standby = build_standby(cfg, key, tokens, store, leadership, started_ms, link_tls, link_fingerprint)
        front.switch(standby.app, standby.edge)
        worker_server = WorkerServer(worker_listener, standby.port)
        worker_server.start()
        api_server.start()
        log.info("master %s is a standby: API on %s, workers on %s:%d; waiting for the lease (%gs)",
                 leadership.holder, api_url, cfg.worker_host, worker_server.server_port, cfg.lease_time)
        watchdog = service_manager.ready("standby: API on %s:%d" % (host, api_server.server_port))
        epoch = leadership.campaign(stopping)
        if epoch is None:
            return _stop(api_server, worker_server, store, None, [], watchdog, leadership)
        store.fence_writes(leadership.holder, epoch)
    else:
        worker_server = watchdog = None

    # From here on this master is active (the tokens are those in use: a standby may have reloaded them).
    active = build_active(cfg, key, front.edge.tokens if front.edge else tokens, store, wall_ms, started_ms,
                          link_tls, link_fingerprint, client, groups, notify_allow)
    if latest[0] is not cfg:
        reload_groups(latest[0], active.core)
        reload_relay_networks(latest[0], active.port.workers)
    reloads.append(lambda new: reload_groups(new, active.core))
    reloads.append(lambda new: reload_relay_networks(new, active.port.workers))
    front.switch(active.app, active.edge)
    if leadership is not None:
        worker_server.serve(active.port)
    else:
        # A deep accept queue: after a master restart every worker dials in within seconds.
        worker_server = WorkerServer((cfg.worker_host, cfg.worker_port), active.port, backlog=WORKER_BACKLOG)
        worker_server.start()
        api_server.start()
    log.info("master listening: API on %s://%s:%d, workers on %s:%d, state in %s",
             "https" if api_context else "http", host, api_server.server_port,
             cfg.worker_host, worker_server.server_port, cfg.state_dir)
    if watchdog is None:
        watchdog = service_manager.ready("API on %s:%d, workers on %s:%d" % (
            host, api_server.server_port, cfg.worker_host, worker_server.server_port))

    background = start_loops(cfg, store, active, wall_ms)
    if leadership is not None:
        background.append(gevent.spawn(leadership.keep, step_down))
    stopping.wait()
    return _stop(api_server, worker_server, store, active.persister, background, watchdog, leadership)


def _stop(api_server, worker_server, store, persister, background, watchdog, leadership):
    log.info("stopping")
    service_manager.stopping()
    if watchdog is not None:
        watchdog.kill()
    api_server.close()
    worker_server.close()
    gevent.killall(background)
    if persister is not None:
        if not persister.flush(timeout=SHUTDOWN_FLUSH_SECONDS):
            log.error("stopping with %d change(s) not saved: %s; workers keep their unacknowledged results",
                      persister.backlog, persister.last_error or "the store did not answer in time")
        persister.stop()
    if leadership is not None:
        leadership.release()
        leadership.close()
    store.shutdown()
    log.info("master stopped")
    return 0


def holder_name(cfg):
    """This master's name in the lease: master_name, else the host's name; plus the process id,
    so a restarted master does not take itself for the holder of its predecessor's lease."""
    return "%s/%d" % (cfg.master_name or socket.gethostname(), os.getpid())


def step_down(why):
    """The lease is lost: stop acting at once and start again as a standby. Re-executing the
    process drops every pool, session and queued write held in memory; the database has what
    was committed, and the workers keep what was not acknowledged."""
    log.error("stepping down: %s; restarting as a standby", why)
    logging.shutdown()
    os.execv(sys.executable, sys.orig_argv)


def reload_config(config_path, reloads):
    """SIGHUP: read the config file again and hand it to each of ``reloads``; a file that
    does not validate changes nothing (the settings in use stay)."""
    try:
        new = config_module.load(config_path, "master")
    except ConfigError as exc:
        log.error("reload: kept the settings in use; %s", "; ".join(exc.problems))
        return
    for reload in reloads:
        reload(new)


def reload_tokens(new, edge):
    """The API tokens (api_tokens and api_tokens_file), so they can be rotated without a
    restart. Tokens that would leave a master with tokens tokenless (it may be listening off
    loopback) are refused: the tokens in use stay."""
    try:
        tokens = secret_files.read_api_tokens(new)
    except ConfigError as exc:
        log.error("reload: kept the API tokens in use; %s", "; ".join(exc.problems))
        return
    if edge.tokens and not tokens:
        log.error("reload: kept the API tokens in use; the new configuration has none, which would open the API")
        return
    edge.tokens = tokens
    log.info("reload: %d API token(s): %s", len(tokens), ", ".join("%s (%s)" % (t.name, t.scope) for t in tokens))


def reload_notify_allow(new, notify_allow):
    """notify_allow: submits and attempts from now on are checked against the new list (a
    value that does not validate has refused the whole file, in reload_config, with one
    log line: the list in use stays)."""
    allow = new.notify_allow or AllowList()
    if allow != notify_allow.current:
        notify_allow.current = allow
        log.info("reload: notify_allow: %s", allow.describe())


def reload_relay_networks(new, workers):
    """relay_networks: connected workers' advertised relay addresses are checked again at
    once, and each worker's from then on (worker_sessions.ActiveWorkers.set_relay_networks):
    narrowing the list is how an admin stops children dialing a worker he no longer trusts."""
    if new.relay_networks != workers.relay_networks:
        log.info("reload: relay_networks: %s", ", ".join(str(n) for n in new.relay_networks) or "none")
        workers.set_relay_networks(new.relay_networks)


def reload_groups(new, core):
    """The named groups (groups and groups_file): targets submitted from now on resolve with
    them (pools already submitted keep the workers they resolved to)."""
    try:
        groups = read_groups(new)
    except ConfigError as exc:
        log.error("reload: kept the groups in use; %s", "; ".join(exc.problems))
        return
    core.groups = groups
    log.info("reload: %d group(s): %s (settings other than tokens, groups, notify_allow and relay_networks take a restart)",
             len(groups), ", ".join(sorted(groups)) or "none")

