"""GET /metrics: the master's and the workers' numbers in the Prometheus text format,
written by Debian's python3-prometheus-client (imported only when the master starts
with metrics, so a master without the library still runs and says why /metrics does
not answer).

Counters and histograms are kept as plain numbers as events happen (a job ended, a
pool submitted, a result committed, an API request answered: ``metrics_samples.Tally``)
and written out through the library's metric families at each scrape; the workers' gauges are read from the
registry when a scraper asks (``metrics_samples``), so no per-worker series is kept
between scrapes, and a worker that leaves the registry leaves the metrics with it.
"""

import logging

import gevent
from gevent.event import AsyncResult

from .metrics_samples import RESOURCE_GAUGES, STATE_GAUGES, Tally, label_keys, worker_rows

log = logging.getLogger(__name__)

# Seconds from a result's arrival to its commit (then it is acknowledged); the SQLite
# commit with fsync is ~1-20 ms on an SD card, more when the store is behind.
RESULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
# Workers whose rows are read between two turns of the event loop.
ROWS_AT_ONCE = 1000
# A real turn of the loop (sleep(0) may run ready greenlets without polling sockets).
YIELD_SECONDS = 0.001
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
HELP = dict([(name, text) for name, text in STATE_GAUGES] + [(name, text) for name, text, _ in RESOURCE_GAUGES])


def load_client():
    """The prometheus_client module, or None (logged) when it is not installed."""
    try:
        import prometheus_client
        import prometheus_client.core  # noqa: F401  (GaugeMetricFamily)
    except ImportError:
        log.warning("GET /metrics is off: the Python library prometheus_client is not installed "
                    "(apt install python3-prometheus-client)")
        return None
    return prometheus_client


class Metrics:
    def __init__(self, client, registry, active_pools, persister, store_bytes, clock, schedule_runs=None):
        self.client = client
        self.workers = registry
        self.active_pools = active_pools    # () -> how many pools are running (PoolCore.active_count)
        self.persister = persister
        self.store_bytes = store_bytes      # () -> the space the pool store takes (PoolStore.disk_bytes)
        self.clock = clock
        self.schedule_runs = schedule_runs  # schedule_runs.ScheduleRuns, read at each scrape
        # Counted as plain numbers where they happen (the result path among them) and
        # written out by the library at each scrape.
        self.jobs_ended = {}                # state -> count
        self.pools_submitted = 0
        self.result_latency = Tally(RESULT_BUCKETS)
        self.job_duration = Tally(JOB_BUCKETS)
        self.api_duration = {}              # (method, route, code) -> Tally
        self.notifications = {"sent": 0, "failed": 0, "attempts_failed": 0}
        self._scraping = None

    def exposition(self):
        """The text a scraper gets. At 10,000 workers it takes most of a second of CPU to
        write, so it is written a metric family (and a thousand workers' rows) at a time,
        letting results and heartbeats through in between; scrapers that ask while a
        scrape is under way share its answer."""
        if self._scraping is not None:
            return self._scraping.get()
        self._scraping = waiter = AsyncResult()
        try:
            parts = [self.client.generate_latest(_Family(*self._event_families()))]     # small
            for family in self._gauge_families():
                parts.append(self.client.generate_latest(_Family(family)))
                gevent.sleep(YIELD_SECONDS)
            text = b"".join(parts)
        except BaseException as exc:
            waiter.set_exception(exc)
            raise
        finally:
            self._scraping = None
        waiter.set(text)
        return text

    def _event_families(self):
        core = self.client.core
        ended = core.CounterMetricFamily("pcci_jobs_ended", "Jobs ended, by their final state", labels=["state"])
        for state, count in sorted(self.jobs_ended.items()):
            ended.add_metric([state], count)
        submitted = core.CounterMetricFamily("pcci_pools_submitted", "Pools accepted by POST /job and POST /copy",
                                             value=self.pools_submitted)
        results = core.HistogramMetricFamily(
            "pcci_result_commit_seconds", "From a result's arrival at the master to its commit in the store, "
            "after which the worker is acknowledged")
        results.add_metric([], self.result_latency.cumulative(), self.result_latency.total)
        jobs = core.HistogramMetricFamily("pcci_job_duration_seconds", "How long ended jobs ran on their worker")
        jobs.add_metric([], self.job_duration.cumulative(), self.job_duration.total)
        api = core.HistogramMetricFamily(
            "pcci_api_request_duration_seconds", "REST API requests, by route and method, from the request to its "
            "answer (to the start of an event stream)", labels=["method", "route", "code"])
        for labels, tally in sorted(self.api_duration.items()):
            api.add_metric(list(labels), tally.cumulative(), tally.total)
        return [ended, submitted, results, jobs, api] + self._notification_families() + \
            self._schedule_families()

    def _notification_families(self):
        counter = self.client.core.CounterMetricFamily
        counts = self.notifications
        return [counter("pcci_notifications_sent", "Pool notifications a receiver accepted (2xx)",
                        value=counts["sent"]),
                counter("pcci_notifications_failed", "Pool notifications given up after their last attempt",
                        value=counts["failed"]),
                counter("pcci_notification_attempts_failed", "Notification attempts that failed (refused, no "
                        "answer, or not 2xx); most are tried again", value=counts["attempts_failed"])]

    def _schedule_families(self):
        if self.schedule_runs is None:
            return []
        core = self.client.core
        runs = core.CounterMetricFamily("pcci_schedule_runs", "Schedules' due times, by how they went (a pool's "
                                        "outcome, or skipped or refused without a pool)", labels=["outcome"])
        for outcome, count in sorted((outcome.value, count) for outcome, count in self.schedule_runs.counts.items()):
            runs.add_metric([outcome], count)
        success = core.GaugeMetricFamily("pcci_schedule_last_success_timestamp", "When each schedule's latest "
                                         "succeeded pool ended (Unix seconds)", labels=["schedule"])
        for name, end_ms in sorted(self.schedule_runs.last_success.items()):
            success.add_metric([name], end_ms / 1000.0)
        return [runs, success]

    def _gauge_families(self):
        gauge = self.client.core.GaugeMetricFamily
        workers = self.workers.all()
        keys = label_keys(workers)
        families = {name: gauge(name, HELP[name], labels=["node"] + list(keys.values())) for name in HELP}
        for start in range(0, len(workers), ROWS_AT_ONCE):
            for name, samples in worker_rows(workers[start:start + ROWS_AT_ONCE], self.clock(), keys).items():
                family = families[name]
                for values, value in samples:
                    family.add_metric(values, value)
            gevent.sleep(YIELD_SECONDS)
        yield from families.values()
        for name, text, value in (
                ("pcci_workers_connected", "Workers connected and ready for jobs",
                 sum(1 for info in workers if info.online)),
                ("pcci_workers_known", "Workers the master knows, online or not", len(workers)),
                ("pcci_pools_active", "Pools with jobs still running or queued", self.active_pools()),
                ("pcci_store_bytes", "Size of the pool store on disk (SQLite file and write-ahead log; MariaDB "
                 "tables' data and indexes)",
                 self.store_bytes()),
                ("pcci_store_backlog", "Changes waiting to be saved", self.persister.backlog),
                ("pcci_store_saving", "1 while the store saves, 0 while it fails (disk full, I/O error)",
                 1 if self.persister.health() is None else 0)):
            yield gauge(name, text, value=value)

    # -- events --------------------------------------------------------------------
    def jobs_have_ended(self, jobs):
        for job in jobs:
            state = job.state.value
            self.jobs_ended[state] = self.jobs_ended.get(state, 0) + 1
            if job.start_time is not None and job.end_time is not None:
                self.job_duration.observe(max(0.0, (job.end_time - job.start_time) / 1000.0))

    def pool_submitted(self):
        self.pools_submitted += 1

    def result_committed(self, seconds):
        self.result_latency.observe(seconds)

    def notification_attempted(self, succeeded, gave_up):
        if succeeded:
            self.notifications["sent"] += 1
        else:
            self.notifications["attempts_failed"] += 1
        if gave_up:
            self.notifications["failed"] += 1

    def api_answered(self, method, route, code, seconds):
        key = (method, route, str(code))
        tally = self.api_duration.get(key)
        if tally is None:
            tally = self.api_duration[key] = Tally(API_BUCKETS)
        tally.observe(seconds)


class _Family:
    """Metric families, as generate_latest wants a registry."""

    def __init__(self, *families):
        self.families = families

    def collect(self):
        return self.families
