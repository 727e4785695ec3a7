"""The pool store on both backends: SQLite with a real file, and MariaDB/InnoDB on a real
mariadbd that the session starts (tests/mariadb.py). Every test of the store's calls
runs on both; what only one backend has (WAL, fencing) is tested apart."""

import itertools
import os
import sqlite3

import pytest

import mariadb
from pcci import store_url
from pcci.errors import CannotStart, StoreUnavailable
from pcci.master import store_schema
from pcci.master.lease_board import LeaseBoard
from pcci.master.mariadb_link import Connector
from pcci.master.pool_store import PoolStore
from pcci.master.store import Store, ThreadedStore
from pcci.master.store_mariadb import Fenced, MariaDbStore
from pcci.master.views import pool_json
from pcci.model import Job, Pool, WorkerRecord
from pcci.spilled_text import SpilledText, spill_pieces
from pcci.states import JobState

DATABASES = itertools.count(1)


def open_mariadb(url):
    """A MariaDB store that holds the lease, as an active master's does."""
    target = store_url.parse(url)
    made = MariaDbStore(target, "secret")
    made.open()
    epoch = LeaseBoard(Connector(target, "secret")).claim("test-master", 30, "http://x", "x:1")
    made.fence_writes("test-master", epoch)
    return made


@pytest.fixture
def mariadb_url(request):   # a test that asks for it by name is marked through mariadb_server
    server = request.getfixturevalue("mariadb_server")
    return mariadb.fresh_database(server, "pcci_store_%d" % next(DATABASES))


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.process)])
def backend(request, tmp_path):
    """(open another store on the same database, its name)."""
    if request.param == "sqlite":
        path = str(tmp_path / "pcci.sqlite3")
        return (lambda: _opened(Store(path))), "sqlite"
    url = request.getfixturevalue("mariadb_url")
    return (lambda: open_mariadb(url)), "mariadb"


def _opened(store):
    store.open()
    return store


@pytest.fixture
def store(backend):
    made = backend[0]()
    yield made
    made.close()


def make_pool(pool_id, created, state=JobState.SUCCEEDED, end_time=None, workers=("n1", "n2")):
    jobs = {w: Job(pool_id, w, state=state, exit_code=0 if state is JobState.SUCCEEDED else None,
                   stdout="out %s" % w, position=i) for i, w in enumerate(workers)}
    return Pool(pool_id, "echo hi", created, jobs, timeout=5, env={"A": "1"}, cwd="/tmp",
                end_time=end_time if end_time is not None else (created + 10 if state in (JobState.SUCCEEDED,) else None))


def test_saved_pool_reads_back_whole_and_survives_reopening(store, backend):
    pool = make_pool("p1", 1000)
    pool.jobs["n2"].stdout = "caf\u00e9 \U0001f600 " + "x" * 70000     # 4-byte UTF-8, and past 64 KB
    pool.jobs["n2"].signal = "SIGTERM"
    store.save([pool], list(pool.jobs.values()))
    store.close()
    again = backend[0]()
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
    assert [p.pool_id for p in store.list_pools()] == ["p3", "p2"]


def test_a_large_output_is_stored_in_pieces_read_back_whole_saved_again_once_and_purged(store):
    text = "é" + "x" * (3 << 20) + "€"
    pool = make_pool("p1", 0, end_time=100)
    pool.jobs["n1"].stdout = spill_pieces([text.encode()])
    store.save([pool], list(pool.jobs.values()))
    store.save([pool], [pool.jobs["n1"]])       # saved again: its pieces replaced, not doubled
    back = store.get_pool("p1").jobs
    assert type(back["n1"].stdout) is SpilledText and back["n1"].stdout.text() == text
    assert back["n2"].stdout == "out n2" and back["n1"].stderr == ""
    assert store.purge(ended_before_ms=1000, max_pools=None) == 1
    again = make_pool("p1", 0, end_time=5000)   # the same id after the purge: no piece of the old one
    store.save([again], list(again.jobs.values()))
    assert store.get_pool("p1").jobs["n1"].stdout == "out n1"


def test_purge_keeps_at_most_max_pools_newest(store):
    for n in range(6):
        pool = make_pool("p%d" % n, n, end_time=10 ** 12)
        store.save([pool], list(pool.jobs.values()))
    while store.purge(ended_before_ms=0, max_pools=4, batch=1):
        pass
    assert [p.pool_id for p in store.list_pools()] == ["p5", "p4", "p3", "p2"]


def test_updates_change_only_what_changes_and_workers_are_kept_and_forgotten(store):
    pool = make_pool("p1", 1000, state=JobState.RUNNING)
    store.save([pool], list(pool.jobs.values()))
    job = pool.jobs["n1"]
    job.state, job.exit_code, job.stdout, job.end_time = JobState.FAILED, 3, "done", 2000
    pool.killed_by = "ops"
    store.save([pool], [job], [WorkerRecord("n1", "10.0.0.1", 1, 2, {"cpu": 5.0}, {"rack": "a"}),
                               WorkerRecord("n2", "10.0.0.2", 1, 2, None, {})])
    again = store.get_pool("p1")
    assert (again.jobs["n1"].state, again.jobs["n1"].exit_code, again.jobs["n1"].stdout) == (JobState.FAILED, 3, "done")
    assert again.jobs["n2"].state is JobState.RUNNING and again.killed_by == "ops"
    assert [p.pool_id for p in store.unfinished_pools()] == ["p1"]
    assert [(w.name, w.stats, w.labels) for w in store.workers()] == [("n1", {"cpu": 5.0}, {"rack": "a"}),
                                                                     ("n2", None, {})]
    store.save([], [], [], ["n1"])
    assert [w.name for w in store.workers()] == ["n2"]


def test_the_schema_has_a_version_and_a_newer_one_is_refused(store, backend):
    dialect = store_schema.SQLITE if backend[1] == "sqlite" else store_schema.MARIADB
    assert store.schema_version() == store_schema.newest(dialect)
    future = store_schema.newest(dialect) + 1
    if backend[1] == "sqlite":
        store.db.execute("UPDATE pcci_schema SET version = ?", (future,))
    else:
        store.fence = None
        store._run(lambda cursor: cursor.execute("UPDATE pcci_schema SET version = %s", (future,)))
    store.close()
    with pytest.raises(CannotStart, match="schema version %d; this release of pcci-master knows up to" % future):
        backend[0]()


def test_the_store_reports_the_space_its_data_takes(store, backend):
    """pcci_store_bytes: the SQLite file and its log; MariaDB's tables, data and indexes
    (it reported 0 before: the metric stat'ed the URL as if it were a file)."""
    for number in range(20):
        pool = make_pool("p%02d" % number, 1000 + number)
        store.save([pool], list(pool.jobs.values()))
    used = store.disk_bytes()
    assert used > 0
    if backend[1] == "sqlite":
        assert used >= os.path.getsize(store.path)


def test_every_call_of_the_contract_runs_on_the_store_thread_and_nothing_else_does(tmp_path):
    threaded = ThreadedStore(Store(str(tmp_path / "pcci.sqlite3")))
    threaded.open()
    try:
        for name in PoolStore.__abstractmethods__ - {"open", "close"}:
            assert callable(getattr(threaded, name)), name
        assert threaded.count_pools() == 0 and threaded.workers() == [] and threaded.disk_bytes() > 0
        with pytest.raises(AttributeError):
            threaded.db         # the backend's own attributes are not reachable through it
    finally:
        threaded.shutdown()


def test_sqlite_database_is_in_wal_mode(tmp_path):
    store = _opened(Store(str(tmp_path / "pcci.sqlite3")))
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert isinstance(store.db, sqlite3.Connection)
    store.close()


def test_a_file_from_before_versioned_schemas_is_upgraded_in_place(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE pools (id TEXT PRIMARY KEY, cmd TEXT NOT NULL, created INTEGER NOT NULL, "
                     "end_time INTEGER, timeout REAL, env TEXT, cwd TEXT, status TEXT NOT NULL);"
                     "INSERT INTO pools VALUES ('p0', 'uptime', 5, 6, NULL, NULL, NULL, 'done');")
    db.close()
    store = _opened(Store(path))
    assert store.schema_version() == store_schema.newest(store_schema.SQLITE)
    assert store.get_pool("p0").cmd == "uptime" and store.get_pool("p0").submitted_by is None
    store.close()


@pytest.mark.process
def test_mariadb_writes_need_the_lease_and_a_stale_epoch_is_refused(mariadb_url):
    """Fencing: the store of a master whose lease passed to another cannot write, even
    though its connection still works; reads go on."""
    old = open_mariadb(mariadb_url)
    pool = make_pool("p1", 1000)
    old.save([pool], list(pool.jobs.values()))
    target = store_url.parse(mariadb_url)
    board = LeaseBoard(Connector(target, "secret"))
    assert board.claim("newcomer", 30, "http://new", "new:7070") is None      # held, not expired
    board._run(lambda cursor: cursor.execute("UPDATE pcci_lease SET expires = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"))
    new_epoch = board.claim("newcomer", 30, "http://new", "new:7070")
    assert new_epoch == old.fence[1] + 1
    with pytest.raises(Fenced, match="has passed to another master"):
        old.save([make_pool("p2", 2000)], [])
    with pytest.raises(Fenced):
        old.purge(ended_before_ms=10 ** 12, max_pools=None)
    assert old.get_pool("p2") is None and old.get_pool("p1") is not None
    standby = MariaDbStore(target, "secret")
    standby.open()
    with pytest.raises(Fenced, match="holds no lease"):
        standby.save([make_pool("p3", 3000)], [])
    assert isinstance(Fenced("x"), StoreUnavailable)    # the persister keeps it queued; nothing acknowledged
    view = board.read()
    assert (view.holder, view.epoch, view.expired, view.api_url) == ("newcomer", new_epoch, False, "http://new")
    for made in (old, standby):
        made.close()


def test_mariadb_store_moves_to_the_next_host_and_says_when_none_answers(mariadb_server, mariadb_url):
    from conftest import free_port
    dead = free_port()
    url = mariadb_url.replace("127.0.0.1:%d" % mariadb_server.port,
                              "127.0.0.1:%d,127.0.0.1:%d" % (dead, mariadb_server.port))
    store = open_mariadb(url)
    pool = make_pool("p1", 1000)
    store.save([pool], list(pool.jobs.values()))
    assert store.connector.host_index == 1
    store.close()
    nowhere = MariaDbStore(store_url.parse("mariadb://pcci@127.0.0.1:%d/x" % dead), "secret")
    with pytest.raises(CannotStart, match="unreachable"):
        nowhere.open()


def test_a_page_is_cut_by_bytes_before_it_is_loaded_and_paging_loses_nothing(store):
    names = tuple("node%04d" % n for n in range(300))              # ~3.6 KB of names a pool
    for n in range(10):
        pool = make_pool("p%d" % n, 1000 + n, workers=names)
        store.save([pool], list(pool.jobs.values()))
    page, cut = store.pool_page(limit=1000, max_bytes=10000)
    assert [p.pool_id for p in page] == ["p9", "p8"] and cut and len(page[0].jobs) == 300
    seen, before = [], None
    while True:
        page, cut = store.pool_page(before=before, limit=1000, max_bytes=10000)
        seen += [p.pool_id for p in page]
        if not cut:
            break
        before = page[-1].pool_id
    assert seen == ["p%d" % n for n in range(9, -1, -1)]
    # A pool larger than the cap is still listed, alone: no pool is unlistable.
    assert [p.pool_id for p in store.pool_page(limit=5, max_bytes=10)[0]] == ["p9"]
    assert store.pool_page(limit=10)[1] is True and store.pool_page(limit=11)[1] is False
