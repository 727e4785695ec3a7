"""The write-behind persister against a real SQLite store that fails for a while."""

import gevent

from pcci.master.persister import Persister
from pcci.master.store import Store
from pcci.states import Job, Pool


class FlakyStore(Store):
    """A real store whose first saves fail, as a full disk or a locked file would."""

    def __init__(self, path, failures):
        super().__init__(path)
        self.failures = failures

    def save(self, pools, jobs):
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        super().save(pools, jobs)


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
    store.save = lambda pools, jobs: calls.append(len(jobs)) or original(pools, jobs)
    persister = Persister(store)
    pools = [Pool("p%d" % n, "true", n, {"n1": Job("p%d" % n, "n1")}) for n in range(100)]
    for pool in pools:
        persister.mark(pool, pool.jobs.values())
    persister.flush()
    assert sum(calls) == 100 and len(calls) <= 3
    assert len(store.list_pools(limit=1000)) == 100
    persister.stop()
    store.close()
    gevent.sleep(0)
