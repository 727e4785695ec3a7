"""A pool store damaged while the master runs: found on the first statement that reads
the damage, the master goes unhealthy, saves and acknowledges nothing more, keeps serving."""

import os
import time

import gevent
import pytest

from conftest import wait_until
from pcci.errors import StoreUnavailable
from pcci.master.persister import Persister
from pcci.master.store import Store, is_damage
from pcci.model import Job, Pool
from pcci.states import JobState
from pcci.worker.spool import unacknowledged

PAGE = 4096
MB = 1024 * 1024


def garble(path, skip_bytes):
    """0xFF over everything past the first ``skip_bytes``: every page a reader does not hold
    in memory now reads as garbage (a page number past the end, a broken b-tree)."""
    size = os.path.getsize(path)
    if size <= skip_bytes:
        return 0
    with open(path, "r+b") as handle:
        handle.seek(skip_bytes)
        handle.write(b"\xff" * (size - skip_bytes))
        handle.flush()
        os.fsync(handle.fileno())
    return size - skip_bytes


def garble_store(path):
    """The database past its first two pages, and its write-ahead log past its header and first frame."""
    written = garble(path, 2 * PAGE)
    if os.path.exists(path + "-wal"):
        written += garble(path + "-wal", 32 + 24 + PAGE)
    assert written > MB, "the store is too small to damage its middle pages"


def ended_pool(pool_id, output):
    job = Job(pool_id, "pi1", state=JobState.SUCCEEDED, exit_code=0, start_time=1, end_time=2, stdout=output)
    return Pool(pool_id, "echo", 1, {"pi1": job}, end_time=2)


def test_damage_found_by_a_read_stops_every_write_and_says_why(tmp_path):
    store = Store(str(tmp_path / "pcci.sqlite3"))
    store.open()
    for number in range(6):
        pool = ended_pool("p%d" % number, chr(ord("a") + number) * MB)
        store.save([pool], list(pool.jobs.values()))
    store.db.execute("PRAGMA cache_size = 1")     # the next read goes to the file
    garble_store(store.path)
    persister = Persister(store)
    try:
        assert persister.health() is None
        with pytest.raises(StoreUnavailable, match="is damaged"):
            store.get_pool("p0")
        assert "is damaged" in persister.health()["error"]
        with pytest.raises(StoreUnavailable, match="is damaged"):
            store.save([ended_pool("p9", "x")], [])
        committed = []
        persister.mark(ended_pool("p9", "x"), after_commit=lambda: committed.append(True))
        gevent.sleep(0.2)
        assert committed == [] and persister.backlog == 1      # kept, never acknowledged
    finally:
        persister.stop()
        store.close()


def test_only_damage_counts_as_damage():
    import sqlite3
    assert is_damage(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_damage(sqlite3.DatabaseError("file is not a database"))
    assert not is_damage(sqlite3.OperationalError("database is locked"))
    assert not is_damage(sqlite3.IntegrityError("UNIQUE constraint failed"))


def damage_lines(cluster):
    return sum(1 for line in cluster.master.log().splitlines()
               if line.startswith("ERROR pcci.master.store:") and "is damaged (" in line)


def spooled(cluster, name):
    return unacknowledged(os.path.join(cluster.workers[name].settings["state_dir"], "results"))


def test_a_master_whose_store_is_damaged_while_it_runs_is_unhealthy_and_acknowledges_nothing(cluster, tmp_path):
    go = tmp_path / "go"
    cluster.start_master()
    cluster.start_worker("pi1")
    # The first pool's output goes to pages the store's cache lets go of as more is written.
    first = cluster.run("head -c %d /dev/zero | tr '\\0' a" % MB, ["pi1"])["id"]
    for letter in "bcde":
        cluster.run("head -c %d /dev/zero | tr '\\0' %s" % (MB, letter), ["pi1"])
    # Enough ended pools that the first leaves the master's memory: reading it reads the file.
    for _ in range(70):
        status, _ = cluster.api("POST", "/job", {"cmd": "true", "workers": ["pi1"]})
        assert status == 202
    late = cluster.api("POST", "/job", {"cmd": "for i in $(seq 600); do [ -e %s ] && break; sleep 0.1; done; "
                                               "echo late" % go, "workers": ["pi1"]})[1]["id"]
    cluster.wait_running(late, "pi1")
    wait_until(lambda: cluster.api("GET", "/pools?status=running")[1]["pools"] == [] or
               [p["id"] for p in cluster.api("GET", "/pools?status=running")[1]["pools"]] == [late],
               timeout=30, what="the filler pools done")
    garble_store(os.path.join(cluster.master.settings["state_dir"], "pcci.sqlite3"))

    status, answer = cluster.api("GET", "/pool/%s" % first)
    assert status == 503 and answer["error"]["code"] == "store_unavailable", answer
    status, health = cluster.api("GET", "/health")
    assert status == 503 and "is damaged" in health["store"]["error"], health
    assert damage_lines(cluster) == 1

    go.touch()                                  # the running job ends: its result is never acknowledged
    wait_until(lambda: len(spooled(cluster, "pi1")) == 1, what="the late result spooled")
    time.sleep(2.5)                             # the master's save loop retries every second
    assert len(spooled(cluster, "pi1")) == 1
    status, answer = cluster.api("POST", "/job", {"cmd": "true", "workers": ["pi1"]})
    assert status == 503, answer
    assert cluster.master.process.poll() is None
    assert cluster.api("GET", "/workers")[0] == 200
    assert damage_lines(cluster) == 1
