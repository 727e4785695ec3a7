"""The active master's scheduler: fires each schedule's due times as ordinary pools.

It runs only on the active master (``assembly.build_active``), and sleeps until the
earliest due time of all schedules (a heap; a change wakes it), never on a fixed tick.
Exactly once: a due time's pool carries ``scheduled_by`` and ``scheduled_due``, unique
together in the store, in the pool's own transaction, which on MariaDB also carries the
lease's fence; the pool's jobs are sent only after that commit (``PoolService.submit``).
A second pool for a due time -- this master's, or another's after a failover -- is
refused by the store and never runs. A master that starts or takes over reads each
schedule's settled due time (``schedule_rows``) and goes on from there, deciding about
due times it missed by the schedule's ``missed`` (``schedule_times.plan``).
"""

import dataclasses
import heapq
import itertools
import logging

import gevent
from gevent.event import Event

from ..errors import (ApiError, Busy, InsufficientScope, InternalError, ScheduleExists, StorageFull,
                      StoreUnavailable, UnknownPool, UnknownSchedule)
from . import schedule_spec, schedule_times
from .notify_allow import CurrentAllowList
from .schedule_rows import ScheduleRow
from .schedule_spec import Missed, Outcome

log = logging.getLogger(__name__)

# A due time the store could not take now (busy, failing, fenced) is tried again this much later.
RETRY_MS = 1000
# Pools per schedule read at start for the last outcome and the last success's time.
SEED_POOLS = 3
RECENT_POOLS = 10


@dataclasses.dataclass
class Entry:
    row: ScheduleRow
    schedule: object                # schedule_spec.Schedule, or None if its stored body no longer checks
    problem: str = None             # why the stored body does not check
    base: int = 0                   # due times up to this are settled
    next_due: int = None            # the due time the heap holds for it
    firing: bool = False

    @property
    def name(self):
        return self.row.name


class Scheduler:
    def __init__(self, store, pools, runs, clock, settings, max_copy_bytes, notify_allow=None, tokens=lambda: ()):
        """``max_copy_bytes``: the largest file a copy may carry (api.largest_copy);
        ``notify_allow``: notify_allow as reloaded (notify_allow.CurrentAllowList; default: the config's);
        ``tokens()``: the API tokens in use now (they change on SIGHUP): a schedule fires
        only while the token that last changed it is one of them, with the scope it needs."""
        self.tokens = tokens
        self._limits = schedule_spec.limits_of(settings, max_copy_bytes)
        self._notify_allow = notify_allow or CurrentAllowList(settings.notify_allow)
        self.store = store
        self.pools = pools              # pool_service.PoolService
        self.runs = runs                # schedule_runs.ScheduleRuns
        self.clock = clock              # wall ms
        self.grace_ms = int(settings.schedule_grace * 1000)
        self.max_schedules = settings.max_schedules
        self.entries = {}
        self._heap = []
        self._order = itertools.count()
        self._wake = Event()
        self._unsettled = {}            # name -> the latest due time settled, not yet written
        self._settling = Event()

    @property
    def limits(self):
        """What a schedule's body is checked against, with notify_allow as it is now."""
        return self._limits._replace(notify_allow=self._notify_allow.current)

    # -- start --------------------------------------------------------------------------
    def load(self):
        """Every schedule from the store (the active master's start)."""
        for row in self.store.schedules():
            self._put(row)
        if self.entries:
            log.info("%d schedule(s) loaded", len(self.entries))

    def seed_runs(self):
        """Each schedule's latest pools, for its last outcome and last success (after a restart)."""
        for name in list(self.entries):
            for _due, pool_id in reversed(self.store.scheduled_pools(name, SEED_POOLS)):
                try:
                    self.runs.seen(self.pools.get(pool_id))
                except UnknownPool:
                    pass

    def _put(self, row):
        try:
            schedule, problem = schedule_spec.parse(row.body, self.limits), None
        except ApiError as exc:
            schedule, problem = None, exc.message
            log.error("schedule %s does not check out any more, it stays off until it is changed: %s",
                      row.name, problem)
        entry = Entry(row, schedule, problem, base=row.base)
        self.entries[row.name] = entry
        self._plan_next(entry)
        return entry

    # -- the loop -----------------------------------------------------------------------
    def run(self):
        while True:
            self._wake.clear()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                _due, _order, entry = heapq.heappop(self._heap)
                if self.entries.get(entry.name) is entry and not entry.firing:
                    self._step(entry, now)
            wait = None if not self._heap else max(0.0, (self._heap[0][0] - self.clock()) / 1000.0)
            self._wake.wait(wait)

    def _plan_next(self, entry):
        entry.next_due = None
        if entry.schedule is None or not entry.schedule.enabled:
            return
        try:
            entry.next_due = schedule_times.next_due(entry.schedule.when, entry.base)
        except schedule_times.BadWhen as exc:
            self._stop(entry, str(exc))
            return
        heapq.heappush(self._heap, (entry.next_due, next(self._order), entry))
        self._wake.set()

    def _retry(self, entry, at):
        entry.next_due = at
        heapq.heappush(self._heap, (at, next(self._order), entry))
        self._wake.set()

    def _step(self, entry, now):
        schedule = entry.schedule
        try:
            step = schedule_times.plan(schedule.when, schedule.missed is Missed.RUN_ONCE, entry.base, now,
                                       self.grace_ms)
        except schedule_times.BadWhen as exc:
            self._stop(entry, str(exc))
            return
        if step.action == "wait":
            self._retry(entry, step.due)
            return
        # Each due time on a greenlet of its own, all at once: the pool is made now (its
        # createdTime), then waits for its commit, which the persister batches with the
        # others'. At most one per schedule is under way (``firing``): max_schedules bounds them.
        entry.firing = True
        gevent.spawn(self._fire if step.action == "fire" else self._skip, entry, step)

    def _stop(self, entry, problem):
        """A schedule croniter can take no further: it stays off, saying why, until it is changed."""
        log.error("schedule %s stops: %s", entry.name, problem)
        entry.problem, entry.next_due = problem, None

    def _fire(self, entry, step):
        name, due = entry.name, step.due
        settled = True
        try:
            refused = schedule_spec.authority_problem(entry.row.changed_by, entry.schedule.body, self.tokens())
            if refused is not None:
                raise InsufficientScope(refused)
            request = schedule_spec.pool_request(entry.schedule.body, self.limits)
            request = dataclasses.replace(request, submitted_by=entry.row.changed_by, submitted_from="schedule",
                                          scheduled_by=name, scheduled_due=due)
            pool = self.pools.submit(request)
        except (Busy, StorageFull, StoreUnavailable) as exc:
            # Not stored, so not run: the same due time is tried again (plan says if it is missed by then).
            settled = False
            log.warning("schedule %s: due time %d not fired yet (%s); trying again", name, due, exc.message)
        except InternalError as exc:
            # The store refused the pool: most likely a pool for this due time exists already.
            log.warning("schedule %s: due time %d made no pool: %s", name, due, exc.message)
        except ApiError as exc:
            self.runs.without_pool(name, due, Outcome.REFUSED, exc.message)
            log.warning("schedule %s: due time %d refused: %s", name, due, exc.message)
        except Exception:
            # A bug: logged with its traceback, and the due time tried again (the store keeps it once).
            settled = False
            log.exception("schedule %s: due time %d failed", name, due)
        else:
            self.runs.started(name, due, pool.pool_id)
            log.info("schedule %s: pool %s for due time %d (%d ms late%s)", name, pool.pool_id, due,
                     pool.created - due, ", %d due time(s) missed before it" % step.missed if step.missed else "")
        if settled:
            self._settle(entry, due)
        entry.firing = False
        if settled:
            self._plan_next(entry)
        elif self.entries.get(name) is entry:
            self._retry(entry, self.clock() + RETRY_MS)

    def _skip(self, entry, step):
        log.warning("schedule %s: %d due time(s) up to %d missed (the master was away); skipped (missed: skip)",
                    entry.name, step.missed, step.due)
        self.runs.without_pool(entry.name, step.due, Outcome.SKIPPED)
        self._settle(entry, step.due)
        entry.firing = False
        self._plan_next(entry)

    def _settle(self, entry, due):
        entry.base = max(entry.base, due)
        self._unsettled[entry.name] = max(due, self._unsettled.get(entry.name, 0))
        self._settling.set()

    def settle_loop(self):
        """Record settled due times, many in one transaction: a burst of 1,000 pools is one
        write here, not 1,000 (each an fsync on the store's one thread, ahead of the pools'
        own commits). Until it is written, a fired due time's pool row says it is settled;
        a skip or a refusal is decided the same way again by a master that starts meanwhile."""
        while True:
            self._settling.wait()
            self._settling.clear()
            batch, self._unsettled = self._unsettled, {}
            try:
                self.store.settle_schedules(batch)
            except StoreUnavailable as exc:
                log.warning("could not record %d schedule(s)' settled due times: %s; trying again",
                            len(batch), exc.message)
                for name, due in batch.items():
                    self._unsettled[name] = max(due, self._unsettled.get(name, 0))
                gevent.sleep(RETRY_MS / 1000.0)
                self._settling.set()

    # -- the API's calls ----------------------------------------------------------------
    def get(self, name):
        entry = self.entries.get(name)
        if entry is None:
            raise UnknownSchedule("no schedule named %r" % name[:100])
        return entry

    def create(self, body, by):
        schedule = schedule_spec.parse(body, self.limits)
        if schedule.name in self.entries:
            raise ScheduleExists("a schedule named %s exists; change it with PUT /schedules/%s"
                                 % (schedule.name, schedule.name))
        schedule_spec.check_limit(len(self.entries), self.max_schedules)
        now = self.clock()
        row = ScheduleRow(schedule.name, body, now, 0, now, by)
        self.store.put_schedule(row, self.max_schedules)
        return self._put(row)

    def change(self, name, change, by):
        old = self.get(name)
        body = schedule_spec.merged(old.row.body, change)
        schedule = schedule_spec.parse(body, self.limits)
        now = self.clock()
        since = now if schedule_spec.timing_changed(old.schedule, schedule) else old.row.since
        row = ScheduleRow(name, body, since, max(old.row.settled, old.base), now, by, old.row.latest_pool_due)
        self.store.put_schedule(row)
        return self._put(row)

    def delete(self, name):
        self.get(name)
        self.store.delete_schedule(name)
        del self.entries[name]
        self.runs.forget(name)

    def recent_pools(self, name):
        """The schedule's latest pools (those still in the store), newest first."""
        pools = []
        for _due, pool_id in self.store.scheduled_pools(name, RECENT_POOLS):
            try:
                pools.append(self.pools.get(pool_id))
            except UnknownPool:
                pass
        return pools
