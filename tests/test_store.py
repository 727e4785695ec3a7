"""The SQLite store with a real database file."""

import sqlite3

import pytest

from pcci.master.store import Store
from pcci.master.views import pool_json
from pcci.model import Job, Pool
from pcci.states import JobState


@pytest.fixture
def store(tmp_path):
    made = Store(str(tmp_path / "pcci.sqlite3"))
    made.open()
    yield made
    made.close()


def make_pool(pool_id, created, state=JobState.SUCCEEDED, end_time=None, workers=("n1", "n2")):
    jobs = {w: Job(pool_id, w, state=state, exit_code=0 if state is JobState.SUCCEEDED else None,
                   stdout="out %s" % w, position=i) for i, w in enumerate(workers)}
    return Pool(pool_id, "echo hi", created, jobs, timeout=5, env={"A": "1"}, cwd="/tmp",
                end_time=end_time if end_time is not None else (created + 10 if state in (JobState.SUCCEEDED,) else None))


def test_saved_pool_reads_back_whole_and_survives_reopening(store, tmp_path):
    pool = make_pool("p1", 1000)
    store.save([pool], list(pool.jobs.values()))
    store.close()
    again = Store(str(tmp_path / "pcci.sqlite3"))
    again.open()
    loaded = again.get_pool("p1")
    assert pool_json(loaded) == pool_json(pool)
    assert list(loaded.jobs) == ["n1", "n2"]
    again.close()


def test_listing_is_newest_first_paged_and_filtered(store):
    for n in range(5):
        pool = make_pool("p%d" % n, 1000 + n, state=JobState.RUNNING if n == 4 else JobState.SUCCEEDED)
        store.save([pool], list(pool.jobs.values()))
    page = store.list_pools(limit=2)
    assert [p.pool_id for p in page] == ["p4", "p3"]
    assert [p.pool_id for p in store.list_pools(before="p3", limit=2)] == ["p2", "p1"]
    assert [p.pool_id for p in store.list_pools(status="running")] == ["p4"]
    assert page[0].jobs["n1"].stdout == ""  # listings carry no output


def test_purge_removes_only_pools_that_ended_before_the_cutoff(store):
    old, new, running = make_pool("p1", 0, end_time=100), make_pool("p2", 0, end_time=5000), \
        make_pool("p3", 0, state=JobState.RUNNING)
    for pool in (old, new, running):
        store.save([pool], list(pool.jobs.values()))
    assert store.purge(ended_before_ms=1000, max_pools=None) == 1
    assert store.get_pool("p1") is None and store.get_pool("p2") and store.get_pool("p3")
    assert store.db.execute("SELECT COUNT(*) FROM jobs WHERE pool_id = 'p1'").fetchone()[0] == 0


def test_purge_keeps_at_most_max_pools_newest(store):
    for n in range(6):
        pool = make_pool("p%d" % n, n, end_time=10 ** 12)
        store.save([pool], list(pool.jobs.values()))
    while store.purge(ended_before_ms=0, max_pools=4, batch=1):
        pass
    assert [p.pool_id for p in store.list_pools()] == ["p5", "p4", "p3", "p2"]


def test_database_is_in_wal_mode(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert isinstance(store.db, sqlite3.Connection)
