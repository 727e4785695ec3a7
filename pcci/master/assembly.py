"""The master's parts, wired together in one place.

``build_active`` makes everything an active master is made of -- registry, pool core and
service, persister, live feeds, cluster events, metrics, the worker port and the REST
app -- each given its collaborators as it is built. ``build_standby`` makes what a
standby serves while another master holds the lease. Nothing here listens, starts a
greenlet or reads a file: ``service.run`` (the daemon) and ``tests/harness.py`` (the
master in a test's own process) bind the sockets and run the loops.
"""

import os
from typing import Callable, NamedTuple, Optional

import gevent

from .. import protocol
from .api import build_app, largest_copy
from .blob_store import BlobStore, blob_purge_loop
from .copy_feeder import CopyFeeder, running_copy
from .disk_room import DiskRoom
from .fetch_sink import FetchSink, running_fetch, running_fetches
from .api_edge import ApiEdge
from .cluster_events import ClusterEvents
from .pool_feeds import PoolFeeds
from .metrics import Metrics
from .notifier import Notifier
from .notify_allow import CurrentAllowList
from .notify_outbox import Caps
from .persister import Persister
from .pool_core import PoolCore
from .pool_ids import PoolIdMaker
from .pool_service import PoolService
from .registry import Registry
from .retention import purge_loop
from .schedule_runs import ScheduleRuns
from .scheduler import Scheduler
from .standby import build_standby_app
from .worker_port import WorkerPort
from .worker_sessions import ActiveWorkers, StandbyWorkers


def thread_call(function, *args):
    """function(*args) in gevent's thread pool: a long hash does not stall the event loop."""
    return gevent.get_hub().threadpool.apply(function, args)


class ActiveMaster(NamedTuple):
    registry: Registry
    core: PoolCore
    persister: Persister
    events: ClusterEvents
    feeds: PoolFeeds
    metrics: Optional[Metrics]
    pools: PoolService
    edge: ApiEdge
    app: object                 # the REST API's WSGI app
    port: WorkerPort
    scheduler: Scheduler
    blobs: Optional[BlobStore] = None   # files uploaded for copies
    fetched: Optional[FetchSink] = None     # files workers sent back (POST /fetch)


class StandbyMaster(NamedTuple):
    edge: ApiEdge
    app: object
    port: WorkerPort


def build_active(cfg, key: str, tokens: list, store, clock: Callable[[], int], started_ms: int,
                 link_tls=None, link_fingerprint: str = "", metrics_client=None,
                 groups: Optional[dict] = None, notify_allow: Optional[CurrentAllowList] = None) -> ActiveMaster:
    """An active master over ``store`` (a ``ThreadedStore``), its unfinished pools restored;
    ``groups`` the named groups (with groups_file's; default: the config's own);
    ``notify_allow`` notify_allow as SIGHUP reloads it (default: the config's, never reloaded).
    Workers count as offline, and lost_after runs, from now (a standby's waiting time is not
    the workers' absence)."""
    active_since = clock()
    registry = Registry()
    registry.load(store.workers(), active_since)
    core = PoolCore(registry, int(cfg.lost_after * 1000), active_since, PoolIdMaker().make, cfg.max_pool_jobs,
                    cfg.max_worker_backlog, groups=cfg.groups if groups is None else groups, reconnect_grace_ms=int(cfg.heartbeat_timeout * 1000))
    persister = Persister(store, clock=clock, data_errors=store.data_errors)
    events = ClusterEvents(registry)
    # No worker can send more of a stream than one result frame could carry.
    feeds = PoolFeeds(protocol.largest_output_cap(cfg.max_frame_bytes), cfg.state_dir)
    runs = ScheduleRuns()
    metrics = metrics_client and Metrics(metrics_client, registry, core.active_count, persister, store.disk_bytes,
                                         clock, runs)
    edge = ApiEdge(tokens, on_answer=metrics and metrics.api_answered)
    notify_allow = notify_allow or CurrentAllowList(cfg.notify_allow)
    notifier = Notifier(store, clock, notify_allow, cfg.pool_retention, cfg.notify_retry, cfg.notify_redirects,
                        metrics, caps=Caps(cfg.notify_max_unsent_per_token, cfg.notify_max_unsent),
                        tls_ca=cfg.notify_tls_ca)
    pools = PoolService(core, store, registry, persister, clock, feeds, events, metrics, notifier,
                        on_ended=runs.pools_ended, relay_fanout=cfg.copy_relay_fanout)
    pools.restore()
    notifier.load()
    scheduler = Scheduler(store, pools, runs, clock, cfg, largest_copy(cfg), notify_allow, lambda: edge.tokens)
    scheduler.load()
    # Uploads and fetched files share the state disk: one account of what they will still write.
    room = DiskRoom(cfg.state_dir)
    blobs = BlobStore(os.path.join(cfg.state_dir, "files"), cfg.max_copy_bytes, thread_call, room)
    copies = CopyFeeder(lambda worker, job_id: running_copy(core, worker, job_id), blobs.path)
    fetched = FetchSink(os.path.join(cfg.state_dir, "fetched"), lambda worker, job_id: running_fetch(core, worker, job_id),
                        lambda worker: running_fetches(core, worker), cfg.max_copy_bytes, thread_call, room)
    port = WorkerPort(cfg, key, ActiveWorkers(cfg, registry, pools, persister, clock, events, copies, fetched),
                      link_tls, link_fingerprint)
    app = build_app(cfg, pools, registry, persister, edge, started_ms, events, metrics, blobs, fetched, scheduler,
                    notify_allow)
    return ActiveMaster(registry, core, persister, events, feeds, metrics, pools, edge, app, port, scheduler, blobs, fetched)


def build_standby(cfg, key: str, tokens: list, store, leadership, started_ms: int, link_tls=None,
                  link_fingerprint: str = "") -> StandbyMaster:
    """A standby: pool history from the shared store, every other call and every worker sent
    to the master that holds the lease (``leadership``)."""
    edge = ApiEdge(tokens)
    port = WorkerPort(cfg, key, StandbyWorkers(lambda: (leadership.active_master() or (None, None))[1]),
                      link_tls, link_fingerprint)
    return StandbyMaster(edge, build_standby_app(edge, store, leadership, started_ms), port)


def start_loops(cfg, store, master: ActiveMaster, clock: Callable[[], int]) -> list:
    """The active master's background work, as greenlets: retention, the sweeps for lost
    jobs and queue timeouts, sending notifications, and the scheduler (only an active
    master fires schedules)."""
    scheduler = master.scheduler
    return [gevent.spawn(purge_loop, store, cfg.pool_retention, cfg.max_pools, clock, master.pools.forget_recent),
            gevent.spawn(sweep_loop, master.pools, cfg.lost_after), gevent.spawn(master.pools.notifier.run),
            gevent.spawn(blob_purge_loop, master.blobs, master.core, cfg.pool_retention, master.fetched),
            gevent.spawn(scheduler.run), gevent.spawn(scheduler.settle_loop), gevent.spawn(scheduler.seed_runs)]


def sweep_loop(pools: PoolService, lost_after: float) -> None:
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
