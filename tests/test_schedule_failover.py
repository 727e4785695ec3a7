"""Exactly once across SIGKILLs: a master killed around its schedules' due times, restarted
(SQLite) or replaced by its standby (MariaDB, loopback HA), makes one pool per due time --
none lost, none twice -- and none for a due time missed past the grace where the
schedule says ``missed: skip``. The pools are counted from the database's rows."""

import os
import sqlite3
import time

import pytest

import mariadb
from conftest import wait_until
from test_high_availability import LEASE, TAKEOVER_MARGIN, masters, start_workers, wait_role  # noqa: F401

pytestmark = [pytest.mark.process, pytest.mark.slow]

INTERVAL = 5.0
# A due time found later than this after it is "missed" (schedule_grace).
GRACE = 2.5
# Outcomes within this of the grace go either way (how long a restart takes is not exact).
BAND = 0.7


def next_due_after(seconds):
    return (int(seconds // INTERVAL) + 1) * INTERVAL


def sleep_until(moment):
    time.sleep(max(0.0, moment - time.time()))


def add_schedules(master):
    for missed in ("skip", "run_once"):
        status, made = master.api("POST", "/schedules", {
            "name": missed, "when": "every %ds" % INTERVAL, "missed": missed, "cmd": "echo once",
            "workers": "w1", "offline": "queue", "queueTimeout": 60})
        assert status == 201, made


def expected_pools(due, outages, missed, grace):
    """0, 1, or None (either) pools for a due time, given the outages (down, up) measured."""
    for down, up in outages:
        if down < due <= up:
            late = up - due
            if late < grace - BAND:
                return 1
            if late > grace + BAND:
                if missed == "skip":
                    return 0
                # run_once: one pool, for the latest of the due times missed past the grace.
                after_it = due + INTERVAL - (up - grace)
                return 1 if after_it > BAND else (0 if after_it < -BAND else None)
            return None
    return 1


def check_counts(rows, outages, first, last, grace=GRACE):
    """``rows``: (schedule, due in seconds, pools): one pool per due time from first to last but
    those missed past the grace (``missed: skip``)."""
    counts = {(name, round(float(due))): int(count) for name, due, count in rows}
    checked = 0
    for name in ("skip", "run_once"):
        due = first
        while due <= last:
            want = expected_pools(due, outages, name, grace)
            got = counts.get((name, round(due)), 0)
            assert want is None or got == want, (name, due, got, want, outages)
            checked += want is not None
            due += INTERVAL
    assert max(counts.values()) == 1
    return checked


def wait_for_due(master, due):
    def fired():
        _, page = master.api("GET", "/pools?limit=100", timeout=5)
        fired_for = {(pool["scheduledBy"], pool["scheduledFor"]) for pool in page["pools"]}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(due))
        return {("skip", stamp), ("run_once", stamp)} <= fired_for
    wait_until(fired, timeout=INTERVAL * 3, what="both schedules fired for %s" % due)


def test_sqlite_master_killed_around_due_times_makes_one_pool_each(cluster):
    settings = dict(schedule_min_interval="1s", schedule_grace="%gs" % GRACE)
    cluster.start_master(**settings)
    cluster.start_worker("w1")
    add_schedules(cluster)
    first = next_due_after(time.time())
    outages = []
    # Just before, at, and just after a due time: the pool is not made yet, its commit is
    # under way, or it is committed and its job sent.
    for offset in (-0.05, 0.0, 0.02, 0.15):
        due = next_due_after(time.time() + 1)
        sleep_until(due + offset)
        cluster.master.kill()
        down = time.time()
        cluster.start_master(**settings)
        outages.append((down, time.time()))
    # Away past the grace of the next due time, back before the one after.
    due = next_due_after(time.time() + 1)
    sleep_until(due + 0.3)
    cluster.master.kill()
    down = time.time()
    sleep_until(due + INTERVAL + GRACE + BAND + 0.5)
    cluster.start_master(**settings)
    outages.append((down, time.time()))
    assert outages[-1][1] < due + 2 * INTERVAL, "the restart took too long for this test's timing"
    last = due + 2 * INTERVAL
    wait_for_due(cluster, last)
    wait_until(lambda: cluster.api("GET", "/health")[1]["activePools"] == 0, timeout=30, what="pools done")
    cluster.master.stop()
    database = sqlite3.connect(os.path.join(cluster.base, "master-state", "pcci.sqlite3"))
    rows = database.execute("SELECT scheduled_by, scheduled_due / 1000, COUNT(*) FROM pools "
                            "WHERE scheduled_by IS NOT NULL GROUP BY scheduled_by, scheduled_due").fetchall()
    states = database.execute("SELECT DISTINCT jobs.state FROM jobs JOIN pools ON pools.id = jobs.pool_id "
                              "WHERE pools.scheduled_by IS NOT NULL").fetchall()
    database.close()
    checked = check_counts(rows, outages, first, last)
    assert checked >= 2 * 6
    assert states == [("succeeded",)]       # every pool made ran, those whose master died at once too
    missed = due + INTERVAL
    assert ("skip", missed) not in {(name, due) for name, due, _ in rows}
    assert ("run_once", missed) in {(name, due) for name, due, _ in rows}


def test_ha_failovers_around_due_times_make_one_pool_each(masters, mariadb_server):
    a, b = masters
    ha_grace = LEASE + TAKEOVER_MARGIN + 4
    for cluster in masters:
        cluster.settings.update(schedule_min_interval="1s", schedule_grace="%gs" % ha_grace)
    a.start_master(**a.settings)
    wait_role(a, "active", timeout=LEASE + TAKEOVER_MARGIN)
    b.start_master(**b.settings)
    start_workers(masters, ["w1"])
    a.wait_online("w1")
    add_schedules(a)
    first = next_due_after(time.time())
    active, standby = a, b
    outages = []
    for offset in (-0.05, 0.0, 0.02):
        due = next_due_after(time.time() + 1)
        sleep_until(due + offset)
        active.master.kill()
        down = time.time()
        wait_role(standby, "active", timeout=LEASE + TAKEOVER_MARGIN + 3)
        outages.append((down, time.time()))
        active.start_master(**active.settings)
        active, standby = standby, active
    last = next_due_after(time.time() + 1)
    wait_for_due(active, last)
    wait_until(lambda: active.api("GET", "/health")[1]["activePools"] == 0, timeout=30, what="pools done")
    name = a.settings["store_url"].rsplit("/", 1)[1]
    answer = mariadb_server.sql("SELECT scheduled_by, scheduled_due / 1000, COUNT(*) FROM %s.pools WHERE "
                                "scheduled_by IS NOT NULL GROUP BY scheduled_by, scheduled_due" % name).stdout
    rows = [(line.split("\t")[0], float(line.split("\t")[1]), int(line.split("\t")[2]))
            for line in answer.splitlines()]
    checked = check_counts(rows, outages, first, last, ha_grace)
    assert checked >= 2 * 3         # due times whose count is certain, not all near the grace's edge
    states = mariadb_server.sql("SELECT DISTINCT j.state FROM %s.jobs j JOIN %s.pools p ON p.id = j.pool_id "
                                "WHERE p.scheduled_by IS NOT NULL" % (name, name)).stdout.split()
    assert states == ["succeeded"]
