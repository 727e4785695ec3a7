"""The pool core's I/O shell: reads the clock and the store, sends frames, saves, waits.

Every decision is made by ``PoolCore`` (pure); this module carries out the
``Effects`` it returns: run frames go to the workers' sessions, changes go to the
persister, acknowledgements leave once their transaction has committed, and waiters
on a pool wake when its end is on disk.
"""

import collections
import logging

import gevent
from gevent.event import Event

from .. import protocol
from ..clock import monotonic
from ..errors import Busy, InternalError, StorageFull, StoreUnavailable
from ..framing import encoder_varying
from ..states import KillOutcome
from .persister import Unsavable
from .pool_core import dispatch_fields
from .relay_plan import copy_fields
from .pool_history import StoreHistory, unknown_pool

log = logging.getLogger(__name__)

# More changes than this waiting to be saved: new pools wait (429) until the store catches up.
MAX_STORE_BACKLOG = 200000
# How long a submit waits for its pool to be on disk before it answers 503.
SUBMIT_SAVE_SECONDS = 10
# A submit's run frames are encoded while its pool commits if they take no more than this
# in all (a large stdin to thousands of workers is encoded one frame at a time, after).
EARLY_FRAME_BYTES = 16 * 1024 * 1024
# Acknowledgements leave this many at a time; between two turns the event loop polls
# its sockets and threads (a timer, not sleep(0), which may not get that far), so a
# backlog of acks does not hold up the next commit or a woken waiter.
ACKS_PER_TURN = 256
ACK_PAUSE_SECONDS = 0.0002
# An ack's frame from its job id alone: 10,000 of them after a fan-out.
ack_frame = encoder_varying({"type": protocol.ACK}, "job")


class PoolService:
    def __init__(self, core, store, registry, persister, clock, feeds, events, metrics=None, notifier=None,
                 on_ended=None, relay_fanout=0):
        self.core = core
        self.store = store
        self.registry = registry
        self.persister = persister
        self.clock = clock
        self.feeds = feeds          # pool_feeds.PoolFeeds: running jobs' output, pools' event logs
        self.events = events        # cluster_events.ClusterEvents
        self.metrics = metrics      # metrics.Metrics, or None without prometheus_client
        self.notifier = notifier    # notifier.Notifier: pools' notifications, from submit to their end
        self.history = StoreHistory(store)     # pools that have left memory
        self.on_ended = on_ended    # (pools) -> None: ended pools, once saved (schedule_runs.ScheduleRuns)
        self.relay_fanout = relay_fanout    # a streamed copy's tree (relay_plan): children per relay, 0 off
        self._done_events = {}
        self._acks = collections.deque()        # (worker, ack) whose results have committed
        self._ack_sender = None

    def restore(self):
        count = self.core.restore(self.store.unfinished_pools())
        if count:
            log.info("resumed %d unfinished pool(s) from the store", count)

    # -- submission ------------------------------------------------------------------------
    def submit(self, request):
        """Store the new pool, then send its jobs: a job never runs for a pool that is not
        on disk (a client told "no" might submit it again), and a full disk is a 503."""
        self._refuse_if_store_failing()
        if self.persister.backlog > MAX_STORE_BACKLOG:
            raise Busy("the pool store is %d changes behind; retry later" % self.persister.backlog)
        pool, effects = self.core.submit(request, self.clock())
        if request.notify:
            self._register_notifications(pool, request)
        self.persister.mark_many([pool], effects.save_jobs, on_unsavable=self._unsavable)
        committed = self.persister.committed(pool.pool_id)
        gevent.sleep(0)         # the persister hands the pool to the store's thread ...
        relayed = copy_fields(pool, effects.dispatch, self.registry.connected_session, self.relay_fanout,
                              self.clock())
        frames = run_frames(pool, effects.dispatch, relayed)     # ... and the frames are encoded meanwhile
        try:
            committed.get(timeout=SUBMIT_SAVE_SECONDS)
        except Unsavable as exc:
            self._forget_notifications(pool)
            raise InternalError("the pool could not be stored (%s); it was not run" % exc)
        except gevent.Timeout:
            self.persister.forget(pool.pool_id)
            self.core.drop(pool.pool_id)
            self._forget_notifications(pool)
            self._refuse_if_store_failing()
            raise StoreUnavailable("the pool store did not save the pool within %ds; it was not run"
                                   % SUBMIT_SAVE_SECONDS)
        for worker, frame in frames:
            self._send(worker, frame)
        self.events.pool_changed(pool)
        if self.metrics is not None:
            self.metrics.pool_submitted()
            self.metrics.jobs_have_ended([job for job in effects.save_jobs if job.ended])
        if pool.end_time is not None:           # no job to run: it is done already
            self._ended([pool])
        log.info("pool %s: %r on %d worker(s)", pool.pool_id, pool.cmd, len(pool.jobs))
        return pool

    def _register_notifications(self, pool, request):
        """Its notifications are stored before the pool is: a stored pool never lacks them."""
        try:
            self.notifier.register(pool, request.notify, admin=request.submitter_scope == "admin")
        except BaseException:
            self.core.drop(pool.pool_id)
            raise

    def _forget_notifications(self, pool):
        if self.notifier is not None and pool.pool_id in self.notifier.known:
            self.notifier.forget(pool.pool_id)

    def _refuse_if_store_failing(self):
        problem = self.persister.health()
        if problem is None:
            return
        if problem["full"]:
            raise StorageFull("the master's disk is full (%s); no new pool is accepted until there is room"
                              % problem["error"])
        raise StoreUnavailable("the pool store is not saving (%s); nothing new is accepted until it does"
                               % problem["error"])

    # -- from the worker port ------------------------------------------------------------------
    def on_result(self, session, result):
        pool_id = result["job"].partition("/")[0]
        stored = self.history.find(pool_id) if self.core.find(pool_id) is None else None
        self._carry_out(self.core.on_result(session.name, result, self.clock(), stored), received=monotonic())

    def on_sync(self, session, running, resumed=False):
        self._carry_out(self.core.on_sync(session.name, running, self.clock(), resumed, session.live_output))

    def on_output(self, session, message):
        """A piece of a running job's output, where the core says it belongs."""
        pool = self.core.output_for(session.name, message["job"])
        if pool is not None:
            self.feeds.output(pool, session.name, message)

    def sweep_lost(self):
        self._carry_out(self.core.sweep(self.clock()))

    def expire_queues(self):
        self._carry_out(self.core.expire_queues(self.clock()))

    def _carry_out(self, effects, received=None):
        """Send, save, and after the commit acknowledge; ``received`` is when the result
        that caused these effects arrived (for the metrics)."""
        for worker, message in effects.send:
            self._send(worker, message)
        for worker, pool_id, job_id in effects.output_from:
            self._send(worker, {"type": protocol.OUTPUT_FROM, "job": job_id,
                                "offsets": self.feeds.offsets(pool_id, worker)})
        if effects.save_pools:
            pools = list(effects.save_pools.values())
            if self.feeds.running:
                for job in effects.save_jobs:
                    self.feeds.jobs_changed(effects.save_pools[job.pool_id], [job])
            after_save = effects.after_save
            # Only a pool that has ended needs its save reported to the core (it then
            # leaves memory); most results do not end their pool.
            ended = [pool for pool in pools if pool.end_time is not None]
            jobs = effects.save_jobs
            metrics = self.metrics

            def saved():
                if ended:
                    self._ended(ended)
                for worker, message in after_save:
                    if message["type"] == protocol.ACK:
                        self._acknowledge(worker, message)
                    else:
                        self._send(worker, message)
                if metrics is not None:
                    metrics.jobs_have_ended([job for job in jobs if job.ended])
                    if received is not None:
                        metrics.result_committed(monotonic() - received)
            self.persister.mark_many(pools, effects.save_jobs, after_commit=saved, on_unsavable=self._unsavable)

    def _ended(self, pools):
        """These pools' ends are saved: they leave the core's active pools, their followers
        get ``done``, their waiters wake."""
        ended = set(self.core.saved(pools))
        if self.notifier is not None:
            self.notifier.pools_ended(pools)
        if self.on_ended is not None:
            self.on_ended([pool for pool in pools if pool.pool_id in ended])
        for pool in pools:
            if pool.pool_id in ended:
                self.feeds.pool_ended(pool)
                self.events.pool_changed(pool)
        self._wake(ended)

    def _acknowledge(self, worker, ack):
        """Send an ack (its result has committed) from the ack sender: a commit of thousands
        of results wakes its pools' waiters first, not after thousands of TLS writes."""
        self._acks.append((worker, ack))
        if self._ack_sender is None:
            # Started by a timer: after this commit's callbacks and the waiters they woke.
            self._ack_sender = gevent.spawn_later(0, self._send_acks)

    def _send_acks(self):
        try:
            while self._acks:
                for _ in range(min(ACKS_PER_TURN, len(self._acks))):
                    worker, ack = self._acks.popleft()
                    self._send(worker, ack_frame(ack["job"]))
                gevent.sleep(ACK_PAUSE_SECONDS)
        finally:
            self._ack_sender = None

    def _send(self, worker, message):
        session = self.registry.connected_session(worker)
        if session is not None:
            session.send(message)

    def _wake(self, pool_ids):
        for pool_id in pool_ids:
            event = self._done_events.pop(pool_id, None)
            if event is not None:
                event.set()

    def _unsavable(self, pool_id, error):
        """The store refused this pool for good: it leaves memory, its waiters wake."""
        self.core.drop(pool_id)
        self.feeds.dropped(pool_id)
        self._wake([pool_id])

    # -- reads --------------------------------------------------------------------------------
    def get(self, pool_id):
        pool = self.core.find(pool_id)
        if pool is None:
            pool = self.history.find(pool_id)
            # A result may have brought it back into memory while the store was read.
            pool = self.core.find(pool_id) or pool
        if pool is None:
            raise unknown_pool(pool_id)
        return pool

    def wait(self, pool_id, seconds):
        pool = self.get(pool_id)
        if pool.done or seconds <= 0:
            return pool
        event = self._done_events.setdefault(pool_id, Event())
        event.wait(seconds)
        return self.get(pool_id)

    def live_output(self, pool):
        """worker -> (stdout, stderr) so far, for the running jobs of a running pool."""
        return self.feeds.live_output(pool.pool_id) if not pool.done else {}

    def live_spilled_bytes(self, pool):
        """The bytes of its running jobs' output so far that are held in files."""
        return self.feeds.spilled_bytes(pool.pool_id) if not pool.done else 0

    def live_version(self, pool):
        """What changes with every event of a running pool (its output so far included), so
        readers of the same version may share one rendering; None once it is done."""
        return self.feeds.version(pool.pool_id) if not pool.done else None

    def follow(self, pool_id):
        """The event log of a pool (kept, or made now from its state)."""
        return self.feeds.follow(self.get(pool_id))

    def list(self, status, before, limit):
        """(pools, cut): a page of GET /pools (``pool_pages``), running pools as they are now."""
        pools, cut = self.store.pool_page(status, before, limit)
        return [self.core.active.get(pool.pool_id, pool) for pool in pools], cut

    def forget_recent(self):
        self.core.forget_recent()

    def select(self, terms):
        """The workers checked target terms stand for now (``PoolCore.select``)."""
        return self.core.select(terms)

    def active_count(self):
        """Pools with jobs still running or queued."""
        return self.core.active_count()

    # -- kill ---------------------------------------------------------------------------------
    def kill(self, pool_id, workers, reply_timeout, killed_by=None):
        pool = self.get(pool_id)
        outcomes, targets, effects = self.core.kill_plan(pool, workers, self.clock(), killed_by)
        self._carry_out(effects)            # its killed_by, and the queued jobs it cancelled
        replies = {name: self.registry.session(name).request_kill(job_id) for name, job_id in targets.items()}
        deadline = monotonic() + reply_timeout
        for name, reply in replies.items():
            answered = reply.wait(max(0.0, deadline - monotonic())) is not None
            outcomes[name] = reply.value if answered else KillOutcome.NO_REPLY
        return {name: KillOutcome(outcome).value for name, outcome in outcomes.items()}


def run_frames(pool, dispatch, relayed=None):
    """(worker, encoded run frame) for each (worker, job id) to dispatch: a list, encoded
    now, if they fit in EARLY_FRAME_BYTES; else made one at a time as they are sent.
    ``relayed``: {worker: fields of its own} (a relayed copy's, relay_plan.copy_fields)."""
    if relayed:
        common = dispatch_fields(pool)
        return [(worker, dict(common, job=job_id, **relayed.get(worker, {}))) for worker, job_id in dispatch]
    encode = encoder_varying(dispatch_fields(pool), "job")
    if dispatch and len(encode(dispatch[0][1])) * len(dispatch) > EARLY_FRAME_BYTES:
        return ((worker, encode(job_id)) for worker, job_id in dispatch)
    return [(worker, encode(job_id)) for worker, job_id in dispatch]
