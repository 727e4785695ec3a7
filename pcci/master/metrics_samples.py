"""What GET /metrics says about each worker, as plain rows (pure): which gauges, their
label names and values, read from the registry's worker records and their last
heartbeat. ``metrics.py`` turns these rows into Prometheus metric families.

Each sample costs the exposition ~5 microseconds, so a worker gets eleven gauges, not
every number of its heartbeat: the load's 5- and 15-minute averages and the CPU count
are left out (Prometheus averages load1 over any span), which keeps a scrape of
10,000 workers under a second.

A worker's labels become Prometheus labels named ``label_<key>`` (characters Prometheus
does not allow in a label name become ``_``), so ``pcci_worker_temperature_celsius
{label_rack="b"}`` selects a rack without a join. Resource gauges are given only for an
online worker: an offline worker's last stats are history, and a gap in the graph says
so better than a flat line.
"""

import bisect
import math
import re

# (metric name, help, how to read it from a worker's stats); each reader returns None
# when the worker did not report it (no temperature sensor, an older worker).
RESOURCE_GAUGES = (
    ("pcci_worker_cpu_percent", "CPU use over the last heartbeat interval, percent of all cores",
     lambda s: s.get("cpuPercent")),
    ("pcci_worker_memory_total_bytes", "Physical memory", lambda s: _field(s, "memory", "total")),
    ("pcci_worker_memory_available_bytes", "Memory available to new processes without swapping",
     lambda s: _field(s, "memory", "available")),
    ("pcci_worker_disk_total_bytes", "Size of the filesystem the worker keeps its state on",
     lambda s: _field(s, "disk", "total")),
    ("pcci_worker_disk_free_bytes", "Free space on that filesystem", lambda s: _field(s, "disk", "free")),
    ("pcci_worker_temperature_celsius", "Hottest temperature sensor (a Pi's SoC)", lambda s: s.get("temperature")),
    ("pcci_worker_load1", "Load average over 1 minute (avg_over_time gives longer spans)", lambda s: _load(s, 0)),
)
STATE_GAUGES = (
    ("pcci_worker_online", "1 while the worker is connected and ready for jobs, else 0"),
    ("pcci_worker_running_jobs", "Jobs the worker is running"),
    ("pcci_worker_queued_jobs", "Jobs waiting on the worker for a free slot (max_jobs)"),
    ("pcci_worker_last_heartbeat_age_seconds", "Seconds since the worker's last heartbeat (its last contact "
                                               "when it never sent one)"),
)
NOT_A_LABEL_CHARACTER = re.compile(r"[^a-zA-Z0-9_]")


def label_keys(workers):
    """Every Prometheus label name the workers' labels need, in a stable order, and for
    each worker label key its Prometheus name (the first key wins a clash)."""
    names = {}
    for info in workers:
        for key in info.labels:
            names.setdefault(key, "label_" + NOT_A_LABEL_CHARACTER.sub("_", key))
    kept, seen = {}, set()
    for key in sorted(names):
        if names[key] not in seen:
            kept[key] = names[key]
            seen.add(names[key])
    return kept


def worker_rows(workers, now_ms, keys):
    """{metric name: [(label values, value)]} for these workers; the label values are the
    node's name, then its value (or "") for each of ``keys`` (``label_keys``)."""
    rows = {name: [] for name, _ in STATE_GAUGES}
    rows.update({name: [] for name, _, _ in RESOURCE_GAUGES})
    for info in workers:
        values = [info.name] + [_text(info.labels.get(key, "")) for key in keys]
        online = info.online
        heard = info.last_heartbeat or info.last_seen
        rows["pcci_worker_online"].append((values, 1.0 if online else 0.0))
        rows["pcci_worker_running_jobs"].append((values, float(len(info.running))))
        rows["pcci_worker_queued_jobs"].append((values, float(len(info.queued))))
        if heard is not None:
            rows["pcci_worker_last_heartbeat_age_seconds"].append((values, max(0.0, (now_ms - heard) / 1000.0)))
        if online and isinstance(info.stats, dict):
            for name, _, read in RESOURCE_GAUGES:
                value = _number(read(info.stats))
                if value is not None:
                    rows[name].append((values, value))
    return rows


def _text(value):
    """A label value as text (labels are checked at the handshake; this keeps a scrape
    whole whatever the store held)."""
    return value if type(value) is str else str(value)


def _field(stats, section, key):
    part = stats.get(section)
    return part.get(key) if isinstance(part, dict) else None


def _load(stats, index):
    loads = stats.get("loadAverage")
    return loads[index] if isinstance(loads, list) and len(loads) > index else None


def _number(value):
    """A reported number as a finite float; anything else (a worker's bug, a null, an int
    too large for a float) as None: one bad value must not fail the whole scrape."""
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class Tally:
    """A histogram kept as plain numbers (pure): observing is a bisect and two additions,
    a tenth of what prometheus_client's Histogram costs (its lock), which counted on the
    result path at thousands of results a second. ``bounds`` are the buckets' upper
    bounds (``le``), ascending."""

    def __init__(self, bounds):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)      # the last one: above every bound
        self.total = 0.0

    def observe(self, value):
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self):
        """[(le as text, observations <= le)], ending with +Inf, as the text format lists them."""
        rows, running = [], 0
        for bound, count in zip(self.bounds + (float("inf"),), self.counts):
            running += count
            rows.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return rows
