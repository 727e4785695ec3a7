"""The write-behind persister against a real SQLite store that fails for a while."""

import sqlite3

import gevent
import pytest

from pcci.master.persister import Persister, Unsavable
from pcci.master.store import Store
from pcci.model import Job, Pool


class FlakyStore(Store):
    """A real store whose first saves fail, as a full disk or a locked file would."""

    def __init__(self, path, failures):
        super().__init__(path)
        self.failures = failures

    def save(self, pools, jobs, workers=(), forget_workers=()):
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        super().save(pools, jobs, workers, forget_workers)


def test_acknowledgements_wait_until_the_store_has_the_result(tmp_path, monkeypatch):
    monkeypatch.setattr("pcci.master.persister.RETRY_SECONDS", 0.05)
    store = FlakyStore(str(tmp_path / "db.sqlite3"), failures=2)
    store.open()
    persister = Persister(store)
    pool = Pool("p1", "true", 1, {"n1": Job("p1", "n1")})
    acked = []
    persister.mark(pool, pool.jobs.values(), after_commit=lambda: acked.append(store.get_pool("p1") is not None))
    assert not acked
    persister.committed().get(timeout=5)
    assert acked == [True]
    persister.stop()
    store.close()


def test_many_marks_are_saved_in_few_transactions(tmp_path):
    store = Store(str(tmp_path / "db.sqlite3"))
    store.open()
    calls = []
    original = store.save
    store.save = lambda pools, jobs, workers, forget: calls.append(len(jobs)) or original(pools, jobs, workers, forget)
    persister = Persister(store)
    pools = [Pool("p%d" % n, "true", n, {"n1": Job("p%d" % n, "n1")}) for n in range(100)]
    for pool in pools:
        persister.mark(pool, pool.jobs.values())
    assert persister.flush(timeout=10)
    assert sum(calls) == 100 and len(calls) <= 3
    assert len(store.list_pools(limit=1000)) == 100
    persister.stop()
    store.close()
    gevent.sleep(0)


def test_a_pool_the_store_refuses_is_dropped_and_never_blocks_the_others(tmp_path):
    store = Store(str(tmp_path / "db.sqlite3"))
    store.open()
    persister = Persister(store)
    good = Pool("good", "true", 1, {"n1": Job("good", "n1")})
    # An integer SQLite cannot hold: before the fix this batch was retried forever.
    bad = Pool("bad", "true", 2, {"n1": Job("bad", "n1", exit_code=2 ** 64)})
    acked, refused = [], []
    persister.mark(bad, bad.jobs.values(), after_commit=lambda: acked.append("bad"),
                   on_unsavable=lambda pool_id, error: refused.append(pool_id))
    persister.mark(good, good.jobs.values(), after_commit=lambda: acked.append("good"))
    waiter = persister.committed("bad")
    with pytest.raises(Unsavable):
        waiter.get(timeout=5)
    assert acked == ["good"] and refused == ["bad"]
    assert store.get_pool("good") is not None and store.get_pool("bad") is None
    later = Pool("later", "true", 3, {"n1": Job("later", "n1")})
    persister.mark(later, later.jobs.values())
    assert persister.flush(timeout=5) and store.get_pool("later") is not None
    assert persister.health() is None
    persister.stop()
    store.close()


def test_health_reports_a_store_that_is_not_saving_until_it_saves_again(tmp_path, monkeypatch):
    monkeypatch.setattr("pcci.master.persister.RETRY_SECONDS", 0.05)
    store = FlakyStore(str(tmp_path / "db.sqlite3"), failures=3)
    store.open()
    persister = Persister(store, clock=lambda: 1234)
    pool = Pool("p1", "true", 1, {"n1": Job("p1", "n1")})
    persister.mark(pool, pool.jobs.values())
    gevent.sleep(0.02)
    assert persister.health() == {"error": "OperationalError: database or disk is full", "since": 1234, "full": True}
    assert persister.flush(timeout=5)
    assert persister.health() is None
    persister.stop()
    store.close()


def test_a_forgotten_worker_is_deleted_after_what_was_queued_and_before_what_comes_later(tmp_path):
    from pcci.model import WorkerRecord
    store = Store(str(tmp_path / "db.sqlite3"))
    store.open()
    persister = Persister(store)
    persister.mark_worker(WorkerRecord("pi1", "10.0.0.1", 1, 2, None, {}))
    persister.mark_worker(WorkerRecord("pi2", "10.0.0.2", 1, 2, None, {}))
    assert persister.flush(timeout=5)
    persister.mark_worker(WorkerRecord("pi1", "10.0.0.1", 1, 3, None, {}))      # a heartbeat's record, then
    persister.forget_worker("pi1")                                             # forgotten: deleted
    assert persister.flush(timeout=5)
    assert [record.name for record in store.workers()] == ["pi2"]
    persister.forget_worker("pi2")
    persister.mark_worker(WorkerRecord("pi2", "10.0.0.9", 5, 6, None, {}))      # it came back: kept
    assert persister.flush(timeout=5)
    assert [(record.name, record.address) for record in store.workers()] == [("pi2", "10.0.0.9")]
    persister.stop()
    store.close()
