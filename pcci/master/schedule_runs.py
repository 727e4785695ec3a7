"""How schedules' due times went, in memory, pure: what GET /schedules shows as each one's
last run, and what GET /metrics counts (``pcci_schedule_runs_total{outcome}``,
``pcci_schedule_last_success_timestamp``).

The pool service reports every scheduled pool that ends (``pools_ended``); the scheduler
reports due times that made no pool (skipped, refused) and pools it made. At start the
scheduler seeds each schedule's last run from the store, so a restart keeps the last
success's time.
"""

from typing import NamedTuple, Optional

from .schedule_spec import Outcome, outcome_of


class LastRun(NamedTuple):
    due: int                        # wall ms
    pool_id: Optional[str]
    outcome: Outcome
    error: Optional[str] = None     # why a due time was refused


class ScheduleRuns:
    def __init__(self):
        self.counts = {outcome: 0 for outcome in Outcome if outcome is not Outcome.RUNNING}
        self.last = {}              # schedule name -> LastRun
        self.last_success = {}      # schedule name -> wall ms its latest succeeded pool ended

    def started(self, name, due, pool_id):
        self.last[name] = LastRun(due, pool_id, Outcome.RUNNING)

    def without_pool(self, name, due, outcome, error=None):
        """A due time that made no pool: skipped, or refused (``error`` says why)."""
        self.counts[outcome] += 1
        self.last[name] = LastRun(due, None, outcome, error)

    def pools_ended(self, pools):
        for pool in pools:
            if pool.scheduled_by is not None:
                self.seen(pool, count=True)

    def seen(self, pool, count=False):
        """A scheduled pool as it is now (ended or not); ``count`` it among runs_total."""
        outcome = outcome_of(pool)
        name = pool.scheduled_by
        if count and outcome is not Outcome.RUNNING:
            self.counts[outcome] += 1
        if outcome is Outcome.SUCCEEDED and pool.end_time and pool.end_time > self.last_success.get(name, 0):
            self.last_success[name] = pool.end_time
        known = self.last.get(name)
        if known is None or known.due <= pool.scheduled_due:
            self.last[name] = LastRun(pool.scheduled_due, pool.pool_id, outcome)

    def forget(self, name):
        self.last.pop(name, None)
        self.last_success.pop(name, None)
