"""The notification outbox's rows (pcci.master.notify_outbox) on both store backends: SQLite
with a real file, MariaDB on a real mariadbd (the fixtures of test_store.py)."""

import json

import pytest

from pcci import store_url
from pcci.errors import OutboxFull
from pcci.master import notify_outbox
from pcci.master.notify_rules import Notify
from pcci.master.store_mariadb import Fenced, MariaDbStore
from pcci.states import DeliveryState, JobState
from test_store import backend, make_pool, mariadb_url, store  # noqa: F401 (fixtures)

HOOK = "https://hooks.example/services/x"


def add(store, pool_id, *ons, now=1000, cap=100, owner="ci", total=None):
    notifies = [Notify(HOOK, on, "secret-%d" % n) for n, on in enumerate(ons)]
    ids = ["%s-%d" % (pool_id, n) for n in range(len(ons))]
    store.outbox(notify_outbox.add, pool_id, owner, notifies, ids, now,
                 notify_outbox.Caps(cap, cap if total is None else total))
    return ids


def test_rows_wait_for_the_pool_then_only_matching_ones_become_due(store, backend):
    add(store, "p1", ("failed",), ("done",), ("finished",))
    assert store.outbox(notify_outbox.due, 10 ** 12, 10) == []
    pool = make_pool("p1", 1000, state=JobState.SUCCEEDED)
    assert store.outbox(notify_outbox.arm, pool, 2000) == 2
    store.close()
    store = backend[0]()                                # what is armed is in the store, not in memory
    rows = store.outbox(notify_outbox.for_pool, "p1", write=False)
    assert [row.state for row in rows] == [DeliveryState.SKIPPED, DeliveryState.PENDING, DeliveryState.PENDING]
    due = store.outbox(notify_outbox.due, 2000, 10, write=False)
    assert [row.id for row in due] == ["p1-1", "p1-2"]
    assert store.outbox(notify_outbox.due, 1999, 10, write=False) == []
    summary = json.loads(due[0].body)
    assert summary["event"] == "done" and summary["delivery"] == "p1-1" and summary["pool"]["id"] == "p1"
    assert due[0].secret == "secret-1" and due[0].on == ("done",)
    store.close()


def test_an_attempt_is_recorded_and_an_ended_row_lets_go_of_its_body(store):
    add(store, "p1", ("finished",))
    store.outbox(notify_outbox.arm, make_pool("p1", 1000), 2000)
    attempts = [{"at": "2026-01-01T00:00:00.000Z", "status": 500}]
    store.outbox(notify_outbox.record, "p1-0", DeliveryState.PENDING, attempts, 5000)
    (row,) = store.outbox(notify_outbox.for_pool, "p1")
    assert (row.state, row.attempts, row.next_at, row.body is not None) == (DeliveryState.PENDING, attempts, 5000,
                                                                            True)
    assert store.outbox(notify_outbox.next_due) == 5000
    store.outbox(notify_outbox.record, "p1-0", DeliveryState.SENT, attempts + [{"at": "x", "status": 200}], None)
    (row,) = store.outbox(notify_outbox.for_pool, "p1")
    assert row.state is DeliveryState.SENT and row.body is None and len(row.attempts) == 2
    assert store.outbox(notify_outbox.next_due) is None


def test_unsent_rows_are_capped_and_ended_ones_pruned_oldest_first(store):
    add(store, "p1", ("finished",), ("finished",), cap=3)
    with pytest.raises(OutboxFull):
        add(store, "p2", ("finished",), ("finished",), cap=3)
    assert store.outbox(notify_outbox.for_pool, "p2") == []             # all or nothing
    for n, created in enumerate((100, 200, 300)):
        pool_id = "q%d" % n
        add(store, pool_id, ("failed",), now=created)
        store.outbox(notify_outbox.arm, make_pool(pool_id, created), created)   # succeeded: skipped
    assert store.outbox(notify_outbox.prune, 150, 10) == {"q0"}             # older than the retention
    assert store.outbox(notify_outbox.prune, 0, 1) == {"q1"}                # beyond the count kept
    assert store.outbox(notify_outbox.pools_in, notify_outbox.FINAL) == ["q2"]
    assert sorted(store.outbox(notify_outbox.pools_in, notify_outbox.UNSENT)) == ["p1"]
    store.outbox(notify_outbox.forget, "p1")
    assert store.outbox(notify_outbox.pools_in, notify_outbox.UNSENT) == []


def test_each_token_has_its_own_cap_under_a_total_that_an_admins_pools_pass(store):
    add(store, "m1", ("failed",), ("failed",), owner="mallory", cap=2, total=5)
    with pytest.raises(OutboxFull, match=r"token mallory.s pools .* \(at most 2 a token\)"):
        add(store, "m2", ("failed",), owner="mallory", cap=2, total=5)
    add(store, "a1", ("failed",), ("failed",), owner="alice", cap=2, total=5)     # mallory's full cap is hers only
    add(store, "b1", ("failed",), owner="bob", cap=2, total=5)
    with pytest.raises(OutboxFull, match=r"5 notifications are waiting .* \(at most 5 in all\)"):
        add(store, "c1", ("failed",), owner="carol", cap=2, total=5)
    store.outbox(notify_outbox.add, "r1", "root", [Notify(HOOK, ("failed",), None)], ["r1-0"], 1000,
                 notify_outbox.Caps(2, None))                                    # an admin's: its own cap only
    assert sorted(store.outbox(notify_outbox.pools_in, notify_outbox.UNSENT)) == ["a1", "b1", "m1", "r1"]
    store.outbox(notify_outbox.arm, make_pool("m1", 1000, state=JobState.FAILED), 2000)
    for delivery_id in ("m1-0", "m1-1"):                                         # sent: no longer counted
        store.outbox(notify_outbox.record, delivery_id, DeliveryState.SENT, [], None)
    add(store, "m3", ("failed",), owner="mallory", cap=2, total=5)


@pytest.mark.process
def test_a_master_without_the_lease_cannot_change_the_outbox_but_may_read_it(mariadb_url):  # noqa: F811
    standby = MariaDbStore(store_url.parse(mariadb_url), "secret")
    standby.open()
    with pytest.raises(Fenced):
        add(standby, "p1", ("finished",))
    assert standby.outbox(notify_outbox.for_pool, "p1", write=False) == []
    standby.close()
