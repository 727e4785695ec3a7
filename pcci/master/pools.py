"""The master's pools: submit, record results, find lost jobs, kill, wait.

Pools that are still running live in memory (``active``); every change is handed to
the persister, and a pool leaves memory once its final state is on disk. Reads of
ended pools go to the store.
"""

import collections
import logging
import time

from gevent.event import Event

from .. import protocol
from ..errors import BadRequest, NotFound
from ..framing import encoder_varying
from ..ids import PoolIdMaker, is_pool_id
from ..states import (FINISHED, IllegalTransition, Job, JobState, Pool, accepts_result, apply_result,
                      change_job_state, split_job_id)

log = logging.getLogger(__name__)

FINISHED_VALUES = frozenset(state.value for state in FINISHED)
# Finished pools kept in memory after they are saved, so the "wait, then read" that
# follows most submissions is answered without reading the store.
RECENT_POOLS = 64


def wall_ms():
    return int(time.time() * 1000)


class PoolManager:
    def __init__(self, store, registry, persister, lost_after, clock=wall_ms):
        self.store = store
        self.registry = registry
        self.persister = persister
        self.lost_after_ms = int(lost_after * 1000)
        self.clock = clock
        self.ids = PoolIdMaker()
        self.started_ms = clock()
        self.active = {}
        self.recent = collections.OrderedDict()
        self._done_events = {}
        persister.on_committed = self._committed

    def restore(self):
        for pool in self.store.unfinished_pools():
            self.active[pool.pool_id] = pool
        if self.active:
            log.info("resumed %d unfinished pool(s) from the store", len(self.active))

    # -- submission ----------------------------------------------------------------------
    def submit(self, request):
        names = request["workers"] or self.registry.online_names()
        if not names:
            raise BadRequest("no worker is online; list workers by name or wait for one to connect",
                             code="no_workers_online")
        now = self.clock()
        pool = Pool(self.ids.make(now), request["cmd"], now, {}, timeout=request["timeout"],
                    env=request["env"], cwd=request["cwd"])
        for position, name in enumerate(names):
            pool.jobs[name] = Job(pool.pool_id, name, position=position)
        self.active[pool.pool_id] = pool
        run_frame = encoder_varying({"type": protocol.RUN, "cmd": pool.cmd, "timeout": pool.timeout,
                                     "env": pool.env, "cwd": pool.cwd}, "job")
        for name, job in pool.jobs.items():
            session = self.registry.session(name)
            if session is not None:
                change_job_state(job, JobState.RUNNING, now)
                session.send(run_frame(job.job_id))
            elif self.registry.get(name) is not None:
                change_job_state(job, JobState.OFFLINE, now)
            else:
                change_job_state(job, JobState.UNKNOWN_WORKER, now)
        pool.close_if_done(now)
        self.persister.mark(pool, pool.jobs.values())
        self.persister.committed().get()
        log.info("pool %s: %r on %d worker(s)", pool.pool_id, pool.cmd, len(pool.jobs))
        return pool

    # -- results from workers ---------------------------------------------------------------
    def on_result(self, session, result):
        """Record a worker's result once; acknowledge it when it is on disk (or was already)."""
        ack = {"type": protocol.ACK, "job": result["job"]}
        pool_id, worker = split_job_id(result["job"])
        if worker != session.name:
            raise protocol.ProtocolError("worker %s sent a result for %s" % (session.name, result["job"]))
        if result["state"] not in FINISHED_VALUES:
            raise protocol.ProtocolError("result for %s has state %r" % (result["job"], result["state"]))
        pool = self._find_pool(pool_id)
        job = pool.jobs.get(worker) if pool else None
        if job is None:
            log.warning("result for unknown job %s from %s dropped", result["job"], session.name)
            session.send(ack)
            return
        if not accepts_result(job):
            log.info("duplicate result for %s (already %s) acknowledged again", job.job_id, job.state.value)
            session.send(ack)
            return
        if self.active.get(pool_id) is not pool:
            # A late result (say, for a job given up as lost) reopens an ended pool.
            self.recent.pop(pool_id, None)
            self.active[pool_id] = pool
        now = self.clock()
        apply_result(job, result, now)
        pool.close_if_done(now)
        self.persister.mark(pool, [job], after_commit=lambda: session.send(ack))

    def _find_pool(self, pool_id):
        pool = self.active.get(pool_id) or self.recent.get(pool_id)
        if pool is None and is_pool_id(pool_id):
            pool = self.store.get_pool(pool_id)
            # Another result may have reopened it while the store was read.
            pool = self.active.get(pool_id, pool)
        return pool

    def on_sync(self, session, running):
        """The worker says what it is running; jobs it dispatched earlier and forgot are lost."""
        running = set(running)
        now = self.clock()
        for pool in list(self.active.values()):
            job = pool.jobs.get(session.name)
            if job is not None and job.state is JobState.RUNNING and job.job_id not in running:
                self._give_up(pool, job, now, "worker %s reconnected without it" % session.name)

    def sweep_lost(self):
        """Give up on jobs whose worker has been offline longer than lost_after."""
        now = self.clock()
        for pool in list(self.active.values()):
            for job in pool.jobs.values():
                if job.state not in (JobState.RUNNING, JobState.QUEUED):
                    continue
                info = self.registry.get(job.worker)
                if info is not None and info.online:
                    continue
                offline_since = info.offline_since if info is not None else self.started_ms
                if offline_since is not None and now - offline_since >= self.lost_after_ms:
                    self._give_up(pool, job, now, "worker %s offline for over %ds"
                                  % (job.worker, self.lost_after_ms // 1000))

    def _give_up(self, pool, job, now, why):
        try:
            change_job_state(job, JobState.LOST, now)
        except IllegalTransition:
            return
        log.warning("job %s lost: %s", job.job_id, why)
        pool.close_if_done(now)
        self.persister.mark(pool, [job])

    def _committed(self, pools):
        for pool in pools:
            if pool.done and self.active.get(pool.pool_id) is pool:
                del self.active[pool.pool_id]
                self.recent[pool.pool_id] = pool
                if len(self.recent) > RECENT_POOLS:
                    self.recent.popitem(last=False)
                event = self._done_events.pop(pool.pool_id, None)
                if event is not None:
                    event.set()

    def forget_recent(self):
        """After a purge: the store is the truth again."""
        self.recent.clear()

    # -- reads ------------------------------------------------------------------------------
    def get(self, pool_id):
        pool = self._find_pool(pool_id)
        if pool is None:
            raise NotFound("no pool with id %r (it may have been purged)" % pool_id, code="unknown_pool")
        return pool

    def wait(self, pool_id, seconds):
        pool = self.get(pool_id)
        if pool.done or seconds <= 0:
            return pool
        event = self._done_events.setdefault(pool_id, Event())
        event.wait(seconds)
        return self.get(pool_id)

    def list(self, status, before, limit):
        pools = self.store.list_pools(status, before, limit)
        return [self.active.get(pool.pool_id, pool) for pool in pools]

    # -- kill -------------------------------------------------------------------------------
    def kill(self, pool_id, workers, reply_timeout):
        pool = self.get(pool_id)
        outcomes, waiting = {}, {}
        for name in workers or list(pool.jobs):
            job = pool.jobs.get(name)
            session = self.registry.session(name)
            if job is None:
                outcomes[name] = "not_in_pool"
            elif job.ended:
                outcomes[name] = "already_ended"
            elif session is None:
                outcomes[name] = "worker_offline"
            else:
                waiting[name] = session.request_kill(job.job_id)
        deadline = time.monotonic() + reply_timeout
        for name, reply in waiting.items():
            answered = reply.wait(max(0.0, deadline - time.monotonic())) is not None
            outcomes[name] = reply.value if answered else "no_reply"
        return outcomes
