"""The master's pool logic, pure: plain values in, the things to do out.

Each call takes the time (``now``, in wall-clock ms) and one input -- a submission, a
worker's result, its sync, a sweep tick, a kill request, a commit -- and returns an
``Effects`` saying what must happen: run frames to dispatch, messages to send now,
pools and jobs to save, messages to send once that save has committed. It never
sends, saves, sleeps or reads a clock; ``pcci.master.pool_service`` does that.

Running pools live in ``active``. A pool that has ended moves to ``recent`` once its
final state is saved, so the "wait, then read" that follows most submissions needs no
store read; ``recent`` is bounded by count and by an estimate of its bytes.
"""

import collections
import logging
from typing import Optional

from .. import protocol
from ..errors import BadTarget, Busy, NoMatch, NoWorkersOnline, PoolTooLarge, UserNotAllowed
from ..model import (IllegalTransition, Job, Pool, Rollout, accepts_result, apply_result, change_job_state,
                     split_job_id)
from ..spilled_text import text_size
from ..states import FAILURES, JobState, KillOutcome, OfflinePolicy
from ..target_size import TargetError, TargetTooLarge
from ..targets import fold, resolve
from .bounded_recent import BoundedRecent
from .pool_request import PoolRequest

log = logging.getLogger(__name__)

RECENT_POOLS = 64
# How long a job waits for its offline worker when a pool queues without a queueTimeout.
DEFAULT_QUEUE_SECONDS = 3600
RECENT_BYTES = 32 * 1024 * 1024
# What a job costs in memory besides its output: the object, its strings, the dict slot.
JOB_OVERHEAD_BYTES = 400


class Effects:
    """What one core call wants done: send now; ask for the rest of running jobs' output;
    save; after the save, send after_save and (for a submit) dispatch the run frames."""

    __slots__ = ("dispatch", "send", "output_from", "save_pools", "save_jobs", "after_save")

    def __init__(self):
        self.dispatch = []      # (worker, job id): send the pool's run frame once the pool is saved
        self.send = []          # (worker, message): send now
        # (worker, pool id, job id): ask the worker for this running job's output from where
        # the master's copy ends (an ``output_from`` frame; the shell knows those offsets)
        self.output_from = []
        self.save_pools = {}    # pool id -> Pool: save (with save_jobs) in one transaction
        self.save_jobs = []
        self.after_save = []    # (worker, message): send once that transaction committed

    def save(self, pool, jobs):
        self.save_pools[pool.pool_id] = pool
        self.save_jobs.extend(jobs)

    def __bool__(self):
        return bool(self.dispatch or self.send or self.output_from or self.save_pools or self.after_save)


NO_ROLLOUT = Rollout()


def rollout_of(request: PoolRequest, job_count: int, now: int) -> Optional[Rollout]:
    """The pool's Rollout from a checked request (``validation.rollout``), or None (all at once)."""
    batch, max_failures = request.batch, request.max_failures
    queueing = request.offline is OfflinePolicy.QUEUE
    queue_timeout = request.queue_timeout
    if queueing and queue_timeout is None:
        queue_timeout = DEFAULT_QUEUE_SECONDS
    if batch is None and max_failures is None and not queueing:
        return None
    if isinstance(batch, str):                  # "25%": of the pool's jobs, at least one
        batch = max(1, -(-job_count * int(batch[:-1]) // 100))
    queue_until = None if not queueing else now + int(queue_timeout * 1000)
    return Rollout(batch, max_failures, queue_until)


def refuse_user(job, user, offered, now):
    """A job for a worker that does not run jobs as that user: failed, saying so."""
    change_job_state(job, JobState.FAILED, now)
    job.stderr = ("pcci: worker %s does not run jobs as %r (it offers: %s; its allowed_users)\n"
                  % (job.worker, user, ", ".join(offered) or "only its own user, an older release"))


def dispatch_fields(pool):
    """What every job of the pool is sent, but its id: a command to run, or a file to write."""
    if pool.copy is not None and pool.copy.fetch:
        return {"type": protocol.FETCH_BEGIN, "path": pool.copy.dest, "offset": 0}
    if pool.copy is not None and pool.copy.blob is not None:
        fields = {"type": protocol.COPY_BEGIN, "dest": pool.copy.dest, "bytes": pool.copy.size,
                  "sha256": pool.copy.sha256, "mode": pool.copy.mode, "owner": pool.copy.owner}
        if pool.copy.unpack is not None:
            fields["unpack"] = pool.copy.unpack
        return fields
    if pool.copy is not None:
        return {"type": protocol.COPY, "dest": pool.copy.dest, "content": pool.copy.content,
                "mode": pool.copy.mode, "owner": pool.copy.owner}
    fields = {"type": protocol.RUN, "cmd": pool.cmd, "timeout": pool.timeout, "env": pool.env, "cwd": pool.cwd,
              "user": pool.user}
    if pool.stdin is not None:
        fields["stdin"] = pool.stdin        # only then: only a worker with job_stdin is sent it
    return fields


def run_message(pool, job):
    return dict(dispatch_fields(pool), job=job.job_id)


def describe(terms):
    """The terms as the user wrote them, for a message."""
    return " ".join(term.text if term.include or term.text.startswith("!") else "!" + term.text
                    for term in terms)


def approximate_bytes(pool):
    """What a pool holds in memory, roughly: enough to bound a cache by bytes."""
    size = len(pool.cmd) + JOB_OVERHEAD_BYTES + (len(pool.copy.content or "") if pool.copy is not None else 0)
    # What the request carried counts too: stdin (up to 512 KiB) and env are as large as a body.
    size += len(pool.stdin or "") + sum(len(name) + len(value) for name, value in (pool.env or {}).items())
    for job in pool.jobs.values():
        size += JOB_OVERHEAD_BYTES + len(job.worker) + text_size(job.stdout) + text_size(job.stderr)
    return size


class PoolCore:
    def __init__(self, registry, lost_after_ms, started_ms, new_pool_id, max_pool_jobs,
                 max_worker_backlog=1000, recent_pools=RECENT_POOLS, recent_bytes=RECENT_BYTES, groups=None,
                 reconnect_grace_ms=0):
        self.registry = registry            # read only: who is known, who is online, since when
        # After a (re)start or a takeover the workers dial in over some seconds: until then a
        # restored pool's next turn waits for a known worker instead of ending it offline.
        self.reconnect_until = started_ms + reconnect_grace_ms
        self._held_for_reconnect = False
        self.groups = groups or {}          # the master's named groups, for @group in targets
        self.lost_after_ms = lost_after_ms
        self.started_ms = started_ms
        self.new_pool_id = new_pool_id      # now_ms -> a fresh, time-ordered pool id
        self.max_pool_jobs = max_pool_jobs
        self.max_worker_backlog = max_worker_backlog
        self.unfinished = collections.Counter()     # worker -> jobs sent to it and not yet ended
        self.active = {}
        # Ended pools, once saved: the "wait, then read" after a submit needs no store read.
        self.recent = BoundedRecent(recent_pools, recent_bytes, approximate_bytes)

    def restore(self, pools):
        """Pools that were running when the master stopped."""
        for pool in pools:
            self.active[pool.pool_id] = pool
            for job in pool.jobs.values():
                if job.state is JobState.RUNNING:
                    self.unfinished[job.worker] += 1
        return len(self.active)

    def find(self, pool_id):
        """A pool held in memory, or None (the shell then asks the store)."""
        return self.active.get(pool_id) or self.recent.get(pool_id)

    # -- submission -------------------------------------------------------------------
    def submit(self, request: PoolRequest, now: int) -> tuple:
        """A new pool for a checked request (``validation.job_request``): (pool, Effects)."""
        names = self.resolve(request.terms, request.listed)
        if len(names) > self.max_pool_jobs:
            raise PoolTooLarge("the pool would have %d jobs; the limit (max_pool_jobs) is %d"
                               % (len(names), self.max_pool_jobs))
        busy = [name for name in names if self.unfinished[name] >= self.max_worker_backlog]
        if busy:
            # Back-pressure: accepting more than a worker can work off would only pile up.
            raise Busy("%s already %s %d unfinished job(s) (max_worker_backlog); retry later"
                       % (", ".join(busy[:5]) + (" and %d more" % (len(busy) - 5) if len(busy) > 5 else ""),
                          "has" if len(busy) == 1 else "have", self.max_worker_backlog))
        pool = Pool(self.new_pool_id(now), request.cmd, now, {}, timeout=request.timeout,
                    env=request.env, cwd=request.cwd, submitted_by=request.submitted_by,
                    submitted_from=request.submitted_from, target=request.target,
                    rollout=rollout_of(request, len(names), now), user=request.user, copy=request.copy,
                    stdin=request.stdin, scheduled_by=request.scheduled_by, scheduled_due=request.scheduled_due)
        effects = Effects()
        queueing = pool.rollout is not None and pool.rollout.queue_until is not None
        for position, name in enumerate(names):
            job = pool.jobs[name] = Job(pool.pool_id, name, position=position)
            info = self.registry.get(name)
            if info is None:
                change_job_state(job, JobState.UNKNOWN_WORKER, now)
            elif not info.online:
                if not queueing:
                    change_job_state(job, JobState.OFFLINE, now)
            elif pool.user is not None and pool.user not in info.users:
                refuse_user(job, pool.user, info.users, now)
            elif pool.copy is not None and pool.copy.fetch and protocol.FILE_FETCH not in info.features:
                change_job_state(job, JobState.FAILED, now)
                job.stderr = "pcci: worker %s runs a release that cannot send files back; upgrade it\n" % name
            elif pool.copy is not None and protocol.FILE_COPY not in info.features:
                change_job_state(job, JobState.FAILED, now)
                job.stderr = "pcci: worker %s runs a release that cannot receive files; upgrade it\n" % name
            elif pool.copy is not None and pool.copy.blob is not None and protocol.FILE_STREAM not in info.features:
                change_job_state(job, JobState.FAILED, now)
                job.stderr = ("pcci: worker %s runs a release that takes a file in one frame only; upgrade it (or "
                              "send a file small enough for one frame, POST /copy with content)\n" % name)
            elif pool.stdin is not None and protocol.JOB_STDIN not in info.features:
                change_job_state(job, JobState.FAILED, now)
                job.stderr = ("pcci: worker %s runs a release that cannot feed a job's stdin; upgrade it (the job "
                              "did not run)\n" % name)
        refused = [job for job in pool.jobs.values() if job.state is JobState.FAILED]
        waiting = [job for job in pool.jobs.values() if job.state is JobState.QUEUED]
        if pool.user is not None and refused and not waiting:
            raise UserNotAllowed("no targeted worker may run jobs as %r (each says which users in GET /workers, "
                                 "'users'; the worker's allowed_users)" % pool.user)
        self._advance(pool, now, effects, at_submit=True)
        pool.close_if_done(now)
        self.active[pool.pool_id] = pool
        effects.save(pool, pool.jobs.values())
        return pool, effects

    def _advance(self, pool, now, effects, at_submit=False):
        """Start the pool's queued jobs that may start now: in order, while its batch has room
        and their workers are online. Past maxFailures the rest are skipped; a job whose turn
        came while its worker is away ends ``offline``, unless the pool queues for offline
        workers and its queueTimeout has not passed. Changed jobs are saved; run frames leave
        after the save (at submit: once the pool is on disk, as ``dispatch``)."""
        if pool.rollout is None and not at_submit:
            return      # run all at once: nothing of it waits after its submit (and a result costs O(1))
        rollout = pool.rollout or NO_ROLLOUT
        queued = [job for job in pool.jobs.values() if job.state is JobState.QUEUED]
        if not queued:
            return
        changed = []
        failed = sum(1 for job in pool.jobs.values() if job.state in FAILURES)
        if rollout.max_failures is not None and failed > rollout.max_failures:
            for job in queued:
                change_job_state(job, JobState.SKIPPED, now)
                changed.append(job)
        else:
            room = None if rollout.batch is None else rollout.batch - sum(
                1 for job in pool.jobs.values() if job.state is JobState.RUNNING)
            for job in queued:
                if room is not None and room <= 0:
                    break
                if self.registry.is_online(job.worker):
                    change_job_state(job, JobState.RUNNING, now)
                    self.unfinished[job.worker] += 1
                    if at_submit:
                        effects.dispatch.append((job.worker, job.job_id))
                    else:
                        effects.after_save.append((job.worker, run_message(pool, job)))
                    room = None if room is None else room - 1
                elif not at_submit and self._reconnecting(job.worker, now):
                    self._held_for_reconnect = True
                    continue            # its worker has not dialed in since this master started
                elif rollout.queue_until is None or now >= rollout.queue_until:
                    change_job_state(job, JobState.OFFLINE, now)
                else:
                    continue            # waits for its worker; later jobs may start meanwhile
                changed.append(job)
        pool.close_if_done(now)
        if changed and not at_submit:
            effects.save(pool, changed)

    def active_count(self):
        """Pools with jobs still running or queued."""
        return len(self.active)

    def select(self, terms):
        """The names checked target terms (``validation.target``) stand for, in order."""
        try:
            return resolve(terms, self.registry.target_view(self.groups), self.max_pool_jobs)
        except TargetTooLarge as exc:
            raise PoolTooLarge(str(exc))
        except TargetError as exc:
            raise BadTarget(str(exc))

    def resolve(self, terms, listed):
        """The workers of a new pool. A list is taken as given; an expression must name at
        least one worker this master knows."""
        names = self.select(terms)
        if not names:
            if [term.kind for term in terms if term.include] == ["all"] and not self.registry.online_names():
                raise NoWorkersOnline("no worker is online; list workers by name or wait for one to connect")
            raise NoMatch("the target matches no worker (%s)" % describe(terms))
        if not listed and not any(self.registry.get(name) is not None for name in names):
            raise NoMatch("the target names no worker this master knows: %s" % fold(names[:1000]))
        return names

    # -- results, syncs and sweeps from the worker side ----------------------------------
    def on_result(self, worker, result, now, stored=None):
        """Record a worker's checked result once; acknowledge it after it is saved (or at
        once if it was already). ``stored`` is the pool as read from the store, when
        ``find`` did not have it."""
        ack = {"type": protocol.ACK, "job": result["job"]}
        effects = Effects()
        pool_id, _ = split_job_id(result["job"])
        pool = self.find(pool_id) or stored
        job = pool.jobs.get(worker) if pool is not None else None
        if job is None:
            log.warning("result for unknown job %s from %s dropped", result["job"], worker)
            effects.send.append((worker, ack))
            return effects
        if not accepts_result(job):
            log.info("duplicate result for %s (already %s) acknowledged again", job.job_id, job.state.value)
            effects.send.append((worker, ack))
            return effects
        if self.active.get(pool_id) is not pool:
            # A late result (say, for a job given up as lost) reopens an ended pool.
            self._forget_recent(pool_id)
            self.active[pool_id] = pool
        if job.state is JobState.RUNNING:
            self._ended_on(worker)
        apply_result(job, result, now)
        effects.save(pool, [job])
        self._advance(pool, now, effects)       # the next of a rolling batch, or skip the rest
        pool.close_if_done(now)
        effects.after_save.append((worker, ack))
        return effects

    def on_sync(self, worker, running, now, resumed=False, live_output=False):
        """The worker names every job it holds: running, queued, or being copied (the results
        of those that ended came just before the sync, and are recorded). A job it was sent
        and does not name either never arrived or arrived at a worker process that is gone.
        ``resumed`` says the process that syncs is the one that synced last, so every job
        sent to it since is named if it arrived: the others are sent again (the worker skips
        a job it holds, by id). Otherwise they may have run, and are lost. A worker that
        sends ``live_output`` is asked for the rest of each running job's output (all of it,
        after a master restart), healing pieces lost with the old link."""
        running = set(running)
        effects = Effects()
        resent = []
        for pool in list(self.active.values()):
            job = pool.jobs.get(worker)
            if job is not None and job.state is JobState.RUNNING and job.job_id not in running:
                if resumed:
                    effects.send.append((worker, run_message(pool, job)))
                    resent.append(job.job_id)
                else:
                    self._give_up(pool, job, now, "worker %s reconnected without it (as a new process: it may "
                                  "have run on the one before)" % worker, effects)
            elif job is not None and job.state is JobState.QUEUED:
                self._advance(pool, now, effects)   # its job was waiting for it (or for a turn)
        if resent:
            log.warning("worker %s synced without %d job(s) it was sent (they never arrived): sent again: %s",
                        worker, len(resent), ", ".join(resent[:20]) + (" and more" if len(resent) > 20 else ""))
        if live_output:
            for job_id in running:
                pool = self.active.get(job_id.partition("/")[0])
                job = pool.jobs.get(worker) if pool is not None else None
                if job is not None and job.state is JobState.RUNNING:
                    effects.output_from.append((worker, pool.pool_id, job_id))
        return effects

    def output_for(self, worker, job_id):
        """The pool a piece of live output from ``worker`` belongs to, or None: only a job of
        the worker's own that is running takes output (best effort: the result is the truth)."""
        pool_id, _, owner = job_id.partition("/")
        pool = self.active.get(pool_id)
        if pool is None or owner != worker:
            return None
        job = pool.jobs.get(worker)
        return pool if job is not None and job.state is JobState.RUNNING else None

    def expire_queues(self, now):
        """End the jobs that waited for an offline worker past their pool's queueTimeout, and,
        once the workers' reconnect grace is over, those held for a worker that did not
        return. Asked every second; it looks only at pools that queue (few, and no jobs
        scanned), and at pools with a rollout once when the grace ends."""
        effects = Effects()
        grace_over = self._held_for_reconnect and now >= self.reconnect_until
        if grace_over:
            self._held_for_reconnect = False
        for pool in list(self.active.values()):
            if pool.rollout is not None and (grace_over or (pool.rollout.queue_until is not None
                                                            and now >= pool.rollout.queue_until)):
                self._advance(pool, now, effects)
        return effects

    def _reconnecting(self, worker, now):
        """Whether ``worker`` may still be dialing in after this master's start: it is known,
        has not connected since, and the grace has not run out."""
        if now >= self.reconnect_until:
            return False
        info = self.registry.get(worker)
        return info is not None and info.connected_since is None and \
            (info.offline_since is None or info.offline_since <= self.started_ms)

    def sweep(self, now):
        """Give up on running jobs whose worker has been offline longer than lost_after."""
        effects = Effects()
        for pool in list(self.active.values()):
            for job in pool.jobs.values():
                if job.state is not JobState.RUNNING:
                    continue
                info = self.registry.get(job.worker)
                if info is not None and info.online:
                    continue
                # Not heard of since the master started: count from the start.
                offline_since = info.offline_since if info is not None else self.started_ms
                if offline_since is not None and now - offline_since >= self.lost_after_ms:
                    self._give_up(pool, job, now, "worker %s offline for over %ds"
                                  % (job.worker, self.lost_after_ms // 1000), effects)
        return effects

    def _give_up(self, pool, job, now, why, effects):
        was_running = job.state is JobState.RUNNING
        try:
            change_job_state(job, JobState.LOST, now)
        except IllegalTransition:
            return
        if was_running:
            self._ended_on(job.worker)
        log.warning("job %s lost: %s", job.job_id, why)
        effects.save(pool, [job])
        self._advance(pool, now, effects)
        pool.close_if_done(now)

    def _ended_on(self, worker):
        self.unfinished[worker] -= 1
        if self.unfinished[worker] <= 0:
            del self.unfinished[worker]

    # -- kill -----------------------------------------------------------------------------
    def kill_plan(self, pool, workers, now, killed_by=None):
        """(outcomes decided here, {worker: job id} to ask the workers to kill, Effects). A
        job still queued (a rolling batch's later turn, or waiting for its worker) is
        cancelled here: it ends ``killed`` without having run. A kill that reaches a job is
        recorded on the pool as ``killed_by``."""
        outcomes, targets, effects, cancelled = {}, {}, Effects(), []
        for name in workers or list(pool.jobs):
            job = pool.jobs.get(name)
            if job is None:
                outcomes[name] = KillOutcome.NOT_IN_POOL
            elif job.ended:
                outcomes[name] = KillOutcome.ALREADY_ENDED
            elif job.state is JobState.QUEUED:
                change_job_state(job, JobState.KILLED, now)
                cancelled.append(job)
                outcomes[name] = KillOutcome.CANCELLED
            elif not self.registry.is_online(name):
                outcomes[name] = KillOutcome.WORKER_OFFLINE
            else:
                targets[name] = job.job_id
        if (targets or cancelled) and killed_by:
            pool.killed_by = killed_by
        if targets or cancelled:
            pool.close_if_done(now)
            effects.save(pool, cancelled)
        return outcomes, targets, effects

    # -- after a save -----------------------------------------------------------------------
    def saved(self, pools):
        """These pools' states are on disk: ended ones leave ``active``; returns their ids."""
        ended = []
        for pool in pools:
            if pool.done and self.active.get(pool.pool_id) is pool:
                del self.active[pool.pool_id]
                self._remember(pool)
                ended.append(pool.pool_id)
        return ended

    def drop(self, pool_id):
        """A pool that cannot be saved leaves memory, so it cannot wedge anything else."""
        self.active.pop(pool_id, None)
        self._forget_recent(pool_id)

    def _remember(self, pool):
        self.recent.add(pool.pool_id, pool)

    def _forget_recent(self, pool_id):
        self.recent.pop(pool_id)

    def forget_recent(self):
        """After a purge the store is the truth again."""
        self.recent.clear()

    @property
    def recent_bytes(self):
        return self.recent.bytes
