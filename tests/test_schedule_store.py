"""Schedules in the pool store, on both backends (the fixtures of test_store.py): the rows,
and the unique due time that stops a second pool for it."""

import pytest

from pcci.errors import TooManySchedules
from pcci.master.persister import DATA_ERRORS
from pcci.master.schedule_rows import ScheduleRow
from test_store import backend, make_pool, mariadb_url, store  # noqa: F401  (fixtures)


def scheduled(pool_id, name, due):
    pool = make_pool(pool_id, due + 5)
    pool.scheduled_by, pool.scheduled_due = name, due
    return pool


def test_a_second_pool_for_a_due_time_is_refused_and_the_first_is_kept(store):
    first = scheduled("p1", "tick", 10000)
    store.save([first], list(first.jobs.values()))
    second = scheduled("p2", "tick", 10000)
    second.cmd = "echo second"
    with pytest.raises(DATA_ERRORS + tuple(store.data_errors)):
        store.save([second], list(second.jobs.values()))
    assert store.get_pool("p2") is None
    kept = store.get_pool("p1")
    assert (kept.cmd, kept.scheduled_by, kept.scheduled_due) == ("echo hi", "tick", 10000)
    # Saving the first again (its jobs' results) still works; other due times and schedules too.
    store.save([first], list(first.jobs.values()))
    for pool in (scheduled("p3", "tick", 20000), scheduled("p4", "other", 10000), make_pool("p5", 1), make_pool("p6", 2)):
        store.save([pool], list(pool.jobs.values()))
    assert store.scheduled_pools("tick", 10) == [(20000, "p3"), (10000, "p1")]


def test_schedule_rows_read_back_with_their_latest_pool(store):
    store.put_schedule(ScheduleRow("tick", {"name": "tick", "when": "every 1m", "cmd": "true"}, 1000, 0, 1000, "ops"))
    store.put_schedule(ScheduleRow("idle", {"name": "idle", "when": "every 1h", "cmd": "true"}, 2000, 0, 2000, None))
    pool = scheduled("p1", "tick", 60000)
    store.save([pool], list(pool.jobs.values()))
    store.settle_schedules({"idle": 3600000, "gone": 5})
    store.settle_schedules({"idle": 1})        # never backwards
    rows = {row.name: row for row in store.schedules()}
    assert rows["tick"].latest_pool_due == 60000 and rows["tick"].base == 60000
    assert rows["tick"].body["cmd"] == "true" and rows["tick"].changed_by == "ops"
    assert rows["idle"].settled == 3600000 and rows["idle"].latest_pool_due is None
    store.put_schedule(ScheduleRow("idle", {"name": "idle", "when": "every 2h", "cmd": "true"}, 5000, 0, 5000, "x"))
    assert {row.name: row for row in store.schedules()}["idle"].settled == 3600000    # a change keeps it
    store.delete_schedule("idle")
    assert [row.name for row in store.schedules()] == ["tick"]


def test_the_schedule_limit_is_checked_in_the_inserts_transaction(store):
    for name in ("a", "b"):
        store.put_schedule(ScheduleRow(name, {"name": name}, 1, 0, 1, None), limit=2)
    with pytest.raises(TooManySchedules):
        store.put_schedule(ScheduleRow("c", {"name": "c"}, 1, 0, 1, None), limit=2)
    store.put_schedule(ScheduleRow("a", {"name": "a", "x": 1}, 1, 0, 1, None), limit=2)
    assert len(store.schedules()) == 2
