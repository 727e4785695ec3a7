"""Schedules on the Galera testbed (tests/test_galera.py's: 3 Galera nodes, two masters,
workers, each in its own network namespace): the active master SIGKILLed around due
times, then cut off from the database and the workers (its link down) while due times
pass, and its standby taking over each time -- one pool per due time, counted from the
database's rows, none twice; the cut-off master's late writes are fenced."""

import time

import pytest

from conftest import wait_until
from test_galera import LEASE, TAKEOVER_MARGIN, nspawn, testbed  # noqa: F401  (the fixture)
from test_schedule_failover import INTERVAL, check_counts, next_due_after, sleep_until

pytestmark = pytest.mark.slow

# Longer than a takeover: every due time passed while no master was active still fires.
GRACE = 30.0
# A cut-off master keeps its lease until it runs out; then the other claims it (a Galera
# node that lost a peer may stall commits meanwhile: evs.suspect_timeout).
TAKEOVER = 3 * LEASE + TAKEOVER_MARGIN + 5
SETTINGS = {"schedule_min_interval": "1s", "schedule_grace": "%gs" % GRACE}


def test_galera_failovers_around_due_times_make_one_pool_each(testbed):
    bed = testbed
    bed.start_master("m1", **SETTINGS)
    wait_until(lambda: bed.role("m1") == "active", timeout=LEASE + TAKEOVER_MARGIN, what="m1 active")
    bed.start_master("m2", **SETTINGS)
    bed.start_worker("w1")
    wait_until(lambda: bed.online("m1") == {"w1"}, timeout=30, what="w1 on m1")
    for missed in ("skip", "run_once"):
        status, made = bed.api("m1", "POST", "/schedules", {
            "name": missed, "when": "every %ds" % INTERVAL, "missed": missed, "cmd": "echo once",
            "workers": "w1", "offline": "queue", "queueTimeout": 120})
        assert status == 201, made
    first = next_due_after(time.time())
    outages = []

    # SIGKILL m1 just before and at a due time; m2 takes over, m1 comes back as a standby.
    due = next_due_after(time.time() + 1)
    sleep_until(due - 0.05)
    bed.masters["m1"].kill()
    down = time.time()
    wait_until(lambda: bed.role("m2") == "active", timeout=TAKEOVER, what="m2 active")
    outages.append((down, time.time()))
    bed.start_master("m1", **SETTINGS)
    # m1 must be up as a standby before m2 is cut off, or there is no one to take over (a
    # restart on a loaded machine took longer than the takeover bound once).
    wait_until(lambda: bed.role("m1") == "standby", timeout=30, what="m1 back as a standby")

    # Cut m2 off (its link down) at a due time: it cannot commit, m1 takes over and fires.
    port = "v%s%d" % (bed.bed.prefix[-6:], bed.master_numbers["m2"])
    due = next_due_after(time.time() + 1)
    sleep_until(due)
    nspawn.run("ip", "-n", bed.bed.switch, "link", "set", port, "down")
    down = time.time()
    try:
        wait_until(lambda: bed.role("m1") == "active", timeout=TAKEOVER, what="m1 active")
        outages.append((down, time.time()))
    finally:
        nspawn.run("ip", "-n", bed.bed.switch, "link", "set", port, "up")
    wait_until(lambda: bed.role("m2") == "standby", timeout=LEASE + 20, what="m2 back as a standby")

    last = next_due_after(time.time() + 1)
    sleep_until(last + 1)
    wait_until(lambda: bed.health("m1")["activePools"] == 0, timeout=60, what="pools done")
    answer = bed.galera.nodes[1].sql("SELECT scheduled_by, scheduled_due / 1000, COUNT(*) FROM pcci.pools "
                                     "WHERE scheduled_by IS NOT NULL GROUP BY scheduled_by, scheduled_due").stdout
    rows = [(line.split("\t")[0], float(line.split("\t")[1]), int(line.split("\t")[2]))
            for line in answer.splitlines() if line]
    assert check_counts(rows, outages, first, last, GRACE) >= 2 * 3
    states = bed.galera.nodes[1].sql("SELECT DISTINCT j.state FROM pcci.jobs j JOIN pcci.pools p ON "
                                     "p.id = j.pool_id WHERE p.scheduled_by IS NOT NULL").stdout.split()
    assert states == ["succeeded"]
    print("galera schedule failovers: outages %s" % [(round(up - down, 1)) for down, up in outages])
