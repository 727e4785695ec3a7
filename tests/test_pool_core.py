"""The pool core with plain objects: no processes, no sockets, no store, no sleeps."""

import itertools
from dataclasses import replace

import pytest

from pcci.master import validation

from pcci.errors import ApiError, Busy, NoWorkersOnline, PoolTooLarge
from pcci.master.pool_core import PoolCore, approximate_bytes
from pcci.master.pool_request import PoolRequest
from pcci.master.registry import Registry
from pcci.model import Job, Pool, Rollout, WorkerRecord, change_job_state
from pcci.protocol import result_message
from pcci.states import JobState, KillOutcome

LOST_AFTER_MS = 60000


class Session:
    """What the registry needs of a live session: a name, an address, labels and a synced flag."""

    def __init__(self, name, ready=True, labels=None, users=("_pcci-worker",)):
        self.name, self.address, self.ready, self.labels = name, "10.0.0.1", ready, labels or {}
        self.users = list(users)
        self.features = frozenset(("live_output", "file_copy"))


def make_core(online=("n1", "n2"), offline=(), started_ms=0, max_pool_jobs=100, **limits):
    registry = Registry()
    for name in online:
        registry.attach(Session(name), started_ms)
    for name in offline:
        session = Session(name)
        registry.attach(session, started_ms)
        registry.detach(session, started_ms)
    counter = itertools.count()
    core = PoolCore(registry, LOST_AFTER_MS, started_ms, lambda now: "pool-%d" % next(counter), max_pool_jobs,
                    **limits)
    return core, registry


def request(cmd="true", workers=(), timeout=None):
    terms, listed = validation.target(list(workers) or None, None, 100)
    return PoolRequest(cmd=cmd, terms=terms, listed=listed, timeout=timeout)


def result(job_id, state="succeeded", exit_code=0, stdout="out"):
    return result_message(job_id, state, exit_code, None, 5, 6, stdout, "", False, False)


# -- submit -----------------------------------------------------------------------------

def test_submit_runs_on_online_workers_and_marks_the_others():
    core, _ = make_core(online=("n1",), offline=("n2",))
    pool, effects = core.submit(request(workers=["n1", "n2", "ghost"]), now=10)
    states = {name: job.state for name, job in pool.jobs.items()}
    assert states == {"n1": JobState.RUNNING, "n2": JobState.OFFLINE, "ghost": JobState.UNKNOWN_WORKER}
    assert effects.dispatch == [("n1", pool.pool_id + "/n1")]
    assert list(effects.save_pools) == [pool.pool_id] and len(effects.save_jobs) == 3
    assert effects.after_save == [] and pool.jobs["n1"].start_time == 10
    assert not pool.done and core.find(pool.pool_id) is pool


def test_submit_to_nobody_online_is_refused_not_an_empty_pool():
    core, _ = make_core(online=())
    with pytest.raises(NoWorkersOnline) as caught:
        core.submit(request(), now=1)
    assert caught.value.status == 503 and core.active == {}


def test_every_online_worker_when_none_are_named_in_name_order():
    core, _ = make_core(online=("b", "a"))
    pool, effects = core.submit(request(), now=1)
    assert list(pool.jobs) == ["a", "b"] and [w for w, _ in effects.dispatch] == ["a", "b"]


def test_a_pool_over_max_pool_jobs_is_refused():
    core, _ = make_core(max_pool_jobs=2)
    with pytest.raises(PoolTooLarge):
        core.submit(request(workers=["a", "b", "c"]), now=1)
    assert core.active == {}


def test_a_pool_of_only_offline_workers_is_done_at_once():
    core, _ = make_core(online=(), offline=("n2",))
    pool, effects = core.submit(request(workers=["n2"]), now=7)
    assert pool.done and pool.end_time == 7 and effects.dispatch == []
    assert core.saved([pool]) == [pool.pool_id] and pool.pool_id not in core.active
    assert core.find(pool.pool_id) is pool


# -- results ------------------------------------------------------------------------------

def test_a_result_is_saved_then_acknowledged_and_the_pool_ends_on_the_last():
    core, _ = make_core()
    pool, _ = core.submit(request(workers=["n1", "n2"]), now=1)
    first = core.on_result("n1", result(pool.pool_id + "/n1", "failed", 3), now=2)
    assert first.send == [] and first.after_save == [("n1", {"type": "ack", "job": pool.pool_id + "/n1"})]
    assert [job.worker for job in first.save_jobs] == ["n1"] and not pool.done
    core.on_result("n2", result(pool.pool_id + "/n2"), now=3)
    assert pool.done and pool.end_time == 3 and pool.exit_code == 3
    assert core.saved([pool]) == [pool.pool_id]


def test_a_duplicate_result_is_acknowledged_again_and_changes_nothing():
    core, _ = make_core()
    pool, _ = core.submit(request(workers=["n1"]), now=1)
    core.on_result("n1", result(pool.pool_id + "/n1", stdout="first"), now=2)
    again = core.on_result("n1", result(pool.pool_id + "/n1", stdout="second"), now=3)
    assert again.send == [("n1", {"type": "ack", "job": pool.pool_id + "/n1"})]
    assert not again.save_pools and pool.jobs["n1"].stdout == "first"


def test_a_result_for_an_unknown_job_is_acknowledged_and_dropped():
    core, _ = make_core()
    effects = core.on_result("n1", result("no-such-pool/n1"), now=2)
    assert effects.send == [("n1", {"type": "ack", "job": "no-such-pool/n1"})] and not effects.save_pools


def test_a_late_result_reopens_a_lost_job_of_a_pool_read_from_the_store():
    core, _ = make_core()
    stored = Pool("old", "true", 1, {"n1": Job("old", "n1", state=JobState.LOST, end_time=50)}, end_time=50)
    effects = core.on_result("n1", result("old/n1", stdout="late"), now=99, stored=stored)
    job = stored.jobs["n1"]
    assert (job.state, job.stdout, job.end_time) == (JobState.SUCCEEDED, "late", 6)
    assert core.active["old"] is stored and list(effects.save_pools) == ["old"]
    assert effects.after_save == [("n1", {"type": "ack", "job": "old/n1"})]
    assert core.saved([stored]) == ["old"] and "old" not in core.active


def test_a_late_result_takes_a_pool_out_of_the_recent_cache_while_it_is_saved():
    core, _ = make_core()
    pool, _ = core.submit(request(workers=["n1"]), now=1)
    core.registry.detach(core.registry.get("n1").session, 2)
    core.sweep(now=2 + LOST_AFTER_MS)
    assert pool.jobs["n1"].state is JobState.LOST and core.saved([pool]) == [pool.pool_id]
    assert pool.pool_id in core.recent
    core.on_result("n1", result(pool.pool_id + "/n1"), now=3 + LOST_AFTER_MS)
    assert pool.pool_id not in core.recent and core.active[pool.pool_id] is pool


# -- sync and sweep -----------------------------------------------------------------------

def test_sync_loses_the_jobs_a_reconnecting_worker_no_longer_runs():
    core, _ = make_core()
    kept, _ = core.submit(request(workers=["n1"]), now=1)
    forgotten, _ = core.submit(request(workers=["n1", "n2"]), now=2)
    effects = core.on_sync("n1", [kept.pool_id + "/n1"], now=3)
    assert kept.jobs["n1"].state is JobState.RUNNING
    assert forgotten.jobs["n1"].state is JobState.LOST and forgotten.jobs["n1"].end_time == 3
    assert forgotten.jobs["n2"].state is JobState.RUNNING
    assert list(effects.save_pools) == [forgotten.pool_id]


def test_the_process_that_synced_last_is_sent_again_the_jobs_it_does_not_name():
    core, _ = make_core()
    arrived, _ = core.submit(request(workers=["n1"]), now=1)
    never, _ = core.submit(request("echo again", workers=["n1"]), now=2)
    effects = core.on_sync("n1", [arrived.pool_id + "/n1"], now=3, resumed=True)
    assert never.jobs["n1"].state is JobState.RUNNING and arrived.jobs["n1"].state is JobState.RUNNING
    assert [(worker, message["type"], message["job"], message["cmd"]) for worker, message in effects.send] == \
        [("n1", "run", never.pool_id + "/n1", "echo again")]
    assert not effects.save_pools and not effects.after_save      # nothing changed: nothing to save
    assert core.unfinished["n1"] == 2                              # still counted once each


def test_a_new_worker_process_syncing_loses_what_the_old_one_was_sent_and_is_sent_nothing_again():
    core, _ = make_core()
    pool, _ = core.submit(request(workers=["n1"]), now=1)
    effects = core.on_sync("n1", [], now=3, resumed=False)
    assert pool.jobs["n1"].state is JobState.LOST and not effects.send


def test_a_worker_sending_live_output_is_asked_for_the_rest_of_each_running_job_it_names():
    core, _ = make_core()
    running, _ = core.submit(request(workers=["n1"]), now=1)
    ended, _ = core.submit(request(workers=["n1", "n2"]), now=2)
    core.on_result("n1", result(ended.pool_id + "/n1"), now=3)
    names = [running.pool_id + "/n1", ended.pool_id + "/n1", "unknown-pool/n1"]
    effects = core.on_sync("n1", names, now=4, live_output=True)
    assert effects.output_from == [("n1", running.pool_id, running.pool_id + "/n1")]
    assert core.on_sync("n1", names, now=5).output_from == []          # a worker without live output


def test_live_output_is_taken_only_for_the_senders_own_running_job():
    core, _ = make_core()
    pool, _ = core.submit(request(workers=["n1", "n2"]), now=1)
    assert core.output_for("n1", pool.pool_id + "/n1") is pool
    assert core.output_for("n1", pool.pool_id + "/n2") is None          # another worker's job
    assert core.output_for("n1", "no-such-pool/n1") is None
    core.on_result("n1", result(pool.pool_id + "/n1"), now=2)
    assert core.output_for("n1", pool.pool_id + "/n1") is None          # its job has ended
    assert core.active_count() == 1


def test_a_restored_job_is_sent_again_to_the_same_process_after_a_master_restart():
    core, _ = make_core(online=(), started_ms=5000)
    restored = Pool("p", "true", 1, {"n1": Job("p", "n1", state=JobState.RUNNING, start_time=1)})
    core.restore([restored])
    effects = core.on_sync("n1", [], now=6000, resumed=True)
    assert restored.jobs["n1"].state is JobState.RUNNING
    assert [message["job"] for _, message in effects.send] == ["p/n1"]


class ProcessSession(Session):
    def __init__(self, name, instance):
        super().__init__(name)
        self.instance = instance


def test_only_the_worker_process_that_synced_last_resumes_even_across_a_master_restart():
    registry = Registry()
    registry.load([WorkerRecord("n1", "10.0.0.1", 1, 2, None, {}, "process-a")], now_ms=10)
    assert registry.resumes(ProcessSession("n1", "process-a"))
    assert not registry.resumes(ProcessSession("n1", "process-b"))
    assert not registry.resumes(ProcessSession("n1", None))          # an older worker names none
    newer = ProcessSession("n1", "process-b")
    registry.attach(newer, 20)
    assert registry.get("n1").record().instance == "process-a"      # connected is not synced
    assert registry.synced(newer).record().instance == "process-b"
    assert registry.synced(newer) is None                           # unchanged: nothing to save
    assert not registry.resumes(ProcessSession("n1", "process-a"))


def test_sweep_loses_jobs_only_after_lost_after_offline():
    core, registry = make_core()
    pool, _ = core.submit(request(workers=["n1", "n2"]), now=1000)
    registry.detach(registry.get("n1").session, 2000)
    assert not core.sweep(now=2000 + LOST_AFTER_MS - 1)
    effects = core.sweep(now=2000 + LOST_AFTER_MS)
    assert pool.jobs["n1"].state is JobState.LOST and pool.jobs["n2"].state is JobState.RUNNING
    assert list(effects.save_pools) == [pool.pool_id]
    assert not core.sweep(now=3000 + LOST_AFTER_MS)    # lost once, not again


def test_after_a_restart_a_worker_never_seen_again_is_lost_counting_from_the_start():
    core, _ = make_core(online=(), started_ms=5000)
    restored = Pool("p", "true", 1, {"gone": Job("p", "gone", state=JobState.RUNNING, start_time=1)})
    assert core.restore([restored]) == 1
    assert not core.sweep(now=5000 + LOST_AFTER_MS - 1)
    core.sweep(now=5000 + LOST_AFTER_MS)
    assert restored.jobs["gone"].state is JobState.LOST and restored.done


# -- kill ---------------------------------------------------------------------------------

def test_kill_plan_asks_online_workers_and_answers_the_rest_itself():
    core, registry = make_core(online=("n1", "n2", "n3"))
    pool, _ = core.submit(request(workers=["n1", "n2", "n3"]), now=1)
    core.on_result("n2", result(pool.pool_id + "/n2"), now=2)
    registry.detach(registry.get("n3").session, 3)
    outcomes, targets, _ = core.kill_plan(pool, [], now=4)
    assert targets == {"n1": pool.pool_id + "/n1"}
    assert outcomes == {"n2": KillOutcome.ALREADY_ENDED, "n3": KillOutcome.WORKER_OFFLINE}
    outcomes, targets, _ = core.kill_plan(pool, ["nobody"], now=5)
    assert outcomes == {"nobody": KillOutcome.NOT_IN_POOL} and targets == {}


# -- rolling batches and queueing for offline workers ---------------------------------------

def rollout_request(workers, **options):
    terms, listed = validation.target(list(workers), None, 100)
    return PoolRequest(cmd="true", terms=terms, listed=listed, **validation.rollout(options))


def running(pool):
    return [name for name, job in pool.jobs.items() if job.state is JobState.RUNNING]


def test_a_batch_runs_at_most_n_at_once_in_order_and_starts_the_next_as_one_ends():
    core, _ = make_core(online=("n1", "n2", "n3", "n4", "n5"))
    pool, effects = core.submit(rollout_request(["n1", "n2", "n3", "n4", "n5"], batch=2), now=1)
    assert running(pool) == ["n1", "n2"] and [w for w, _ in effects.dispatch] == ["n1", "n2"]
    assert pool.jobs["n3"].state is JobState.QUEUED
    effects = core.on_result("n2", result(pool.pool_id + "/n2"), now=2)
    assert running(pool) == ["n1", "n3"]
    assert [(w, m["type"], m["job"]) for w, m in effects.after_save if m["type"] == "run"] == \
        [("n3", "run", pool.pool_id + "/n3")]
    assert pool.jobs["n3"] in effects.save_jobs     # saved before its run frame leaves


def test_a_percentage_batch_is_of_the_pools_jobs_and_at_least_one():
    core, _ = make_core(online=("n1", "n2", "n3", "n4", "n5"))
    assert len(running(core.submit(rollout_request(["n1", "n2", "n3", "n4", "n5"], batch="40%"), now=1)[0])) == 2
    assert len(running(core.submit(rollout_request(["n1", "n2", "n3"], batch="10%"), now=2)[0])) == 1


def test_past_max_failures_no_job_starts_and_the_rest_are_skipped():
    core, _ = make_core(online=("n1", "n2", "n3", "n4"))
    pool, _ = core.submit(rollout_request(["n1", "n2", "n3", "n4"], batch=1, maxFailures=1), now=1)
    core.on_result("n1", result(pool.pool_id + "/n1", state="failed", exit_code=1), now=2)
    assert running(pool) == ["n2"]                  # one failure is allowed
    core.on_result("n2", result(pool.pool_id + "/n2", state="failed", exit_code=1), now=3)
    assert [pool.jobs[n].state for n in ("n3", "n4")] == [JobState.SKIPPED, JobState.SKIPPED]
    assert pool.done and pool.end_time == 3


def test_a_queued_job_waits_for_its_worker_and_ends_offline_after_the_queue_timeout():
    core, registry = make_core(online=("n1",), offline=("n2", "n3"))
    pool, _ = core.submit(rollout_request(["n1", "n2", "n3"], offline="queue", queueTimeout=60), now=1000)
    assert running(pool) == ["n1"] and pool.jobs["n2"].state is JobState.QUEUED
    registry.attach(Session("n2"), 2000)
    effects = core.on_sync("n2", [], now=2000)
    assert running(pool) == ["n1", "n2"] and [w for w, m in effects.after_save if m["type"] == "run"] == ["n2"]
    core.expire_queues(now=1000 + 59000)
    assert pool.jobs["n3"].state is JobState.QUEUED
    core.expire_queues(now=1000 + 60000)
    assert pool.jobs["n3"].state is JobState.OFFLINE


def test_without_queueing_an_offline_workers_job_ends_offline_at_once_even_in_a_batch():
    core, _ = make_core(online=("n1", "n3"), offline=("n2",))
    pool, _ = core.submit(rollout_request(["n1", "n2", "n3"], batch=1), now=1)
    assert pool.jobs["n2"].state is JobState.OFFLINE and running(pool) == ["n1"]


def test_after_a_restart_a_restored_batch_waits_for_a_known_worker_to_dial_in_then_gives_up():
    """A takeover or a restart: the workers dial in over some seconds. The next turn of a
    restored rolling batch waits for its worker while the grace lasts, instead of ending
    offline because that worker had not reconnected yet; one that never comes back ends
    offline when the grace is over."""
    registry = Registry()
    registry.load([WorkerRecord(name, None, 1, 1, None, {}) for name in ("n1", "n2", "n3")], 1000)
    core = PoolCore(registry, LOST_AFTER_MS, 1000, lambda now: "new", 100, reconnect_grace_ms=5000)
    pool = Pool("p", "true", 1, {name: Job("p", name, position=i) for i, name in enumerate(("n1", "n2", "n3"))},
                rollout=Rollout(batch=1))
    change_job_state(pool.jobs["n1"], JobState.RUNNING, 1)
    core.restore([pool])
    registry.attach(Session("n1"), 1500)
    core.on_result("n1", result("p/n1"), now=1600)          # n2's turn; n2 has not dialed in yet
    assert pool.jobs["n2"].state is JobState.QUEUED
    registry.attach(Session("n2"), 2000)
    effects = core.on_sync("n2", [], now=2000)
    assert running(pool) == ["n2"] and [w for w, m in effects.after_save if m["type"] == "run"] == ["n2"]
    core.on_result("n2", result("p/n2"), now=2500)          # n3's turn: n3 never comes back
    assert pool.jobs["n3"].state is JobState.QUEUED
    core.expire_queues(now=5999)
    assert pool.jobs["n3"].state is JobState.QUEUED
    effects = core.expire_queues(now=6000)
    assert pool.jobs["n3"].state is JobState.OFFLINE and pool.done and pool.jobs["n3"] in effects.save_jobs


def test_a_kill_cancels_the_jobs_still_queued():
    core, _ = make_core(online=("n1", "n2", "n3"))
    pool, _ = core.submit(rollout_request(["n1", "n2", "n3"], batch=1), now=1)
    outcomes, targets, effects = core.kill_plan(pool, [], now=2, killed_by="ops")
    assert targets == {"n1": pool.pool_id + "/n1"}
    assert outcomes == {"n2": KillOutcome.CANCELLED, "n3": KillOutcome.CANCELLED}
    assert pool.jobs["n2"].state is JobState.KILLED and pool.jobs["n2"].start_time is None
    assert set(effects.save_jobs) == {pool.jobs["n2"], pool.jobs["n3"]} and pool.killed_by == "ops"


# -- jobs as a chosen user ----------------------------------------------------------------

def test_a_job_for_a_worker_that_does_not_offer_the_user_fails_and_the_others_run():
    registry = Registry()
    registry.attach(Session("n1", users=("_pcci-worker", "root")), 0)
    registry.attach(Session("n2"), 0)
    core = PoolCore(registry, LOST_AFTER_MS, 0, lambda now: "pool-%d" % now, 100)
    req = replace(request(workers=["n1", "n2"]), user="root")
    pool, effects = core.submit(req, now=1)
    assert pool.jobs["n1"].state is JobState.RUNNING and pool.user == "root"
    assert pool.jobs["n2"].state is JobState.FAILED and "does not run jobs as 'root'" in pool.jobs["n2"].stderr
    with pytest.raises(ApiError) as caught:
        core.submit(replace(request(workers=["n2"]), user="root"), now=2)
    assert caught.value.code == "user_not_allowed"


# -- memory -------------------------------------------------------------------------------

def test_recent_pools_are_bounded_by_bytes_as_well_as_count():
    core, _ = make_core(recent_pools=1000, recent_bytes=20000)
    ended = []
    for n in range(10):
        pool, _ = core.submit(request(workers=["n1"]), now=n)
        core.on_result("n1", result(pool.pool_id + "/n1", stdout="x" * 5000), now=n)
        core.saved([pool])
        ended.append(pool)
    assert core.recent_bytes <= 20000 and 1 <= len(core.recent) < 10
    assert list(core.recent) == [pool.pool_id for pool in ended[-len(core.recent):]]
    assert core.recent_bytes == sum(approximate_bytes(pool) for pool in core.recent.values())


def test_a_pool_that_cannot_be_saved_leaves_memory():
    core, _ = make_core()
    pool, _ = core.submit(request(workers=["n1"]), now=1)
    core.drop(pool.pool_id)
    assert core.find(pool.pool_id) is None and core.active == {}


def test_a_worker_with_max_worker_backlog_unfinished_jobs_gets_no_more_until_it_catches_up():
    core, registry = make_core(online=("n1", "n2"), max_worker_backlog=2)
    first, _ = core.submit(request(workers=["n1"]), now=1)
    second, _ = core.submit(request(workers=["n1", "n2"]), now=2)
    with pytest.raises(Busy) as caught:
        core.submit(request(workers=["n1"]), now=3)
    assert caught.value.status == 429 and caught.value.headers == {"Retry-After": "1"} and "n1" in str(caught.value)
    core.submit(request(workers=["n2"]), now=3)        # n2 has room
    core.on_result("n1", result(first.pool_id + "/n1"), now=4)
    core.submit(request(workers=["n1"]), now=5)        # one ended: room again
    registry.detach(registry.get("n1").session, 6)
    core.sweep(now=6 + LOST_AFTER_MS)                  # lost jobs no longer count
    assert core.unfinished["n1"] == 0 and core.unfinished["n2"] == 2


def test_restored_running_jobs_count_towards_the_backlog():
    core, _ = make_core(online=("n1",), max_worker_backlog=1)
    core.restore([Pool("p", "true", 1, {"n1": Job("p", "n1", state=JobState.RUNNING)})])
    with pytest.raises(Busy):
        core.submit(request(workers=["n1"]), now=2)


def expression_request(workers, exclude=None):
    terms, listed = validation.target(workers, exclude, 100)
    return PoolRequest(cmd="true", terms=terms, listed=listed, target={"workers": workers, "exclude": exclude})


def test_a_target_expression_picks_by_range_label_and_group_and_leaves_out():
    registry = Registry()
    for name, labels in (("pi1", {"model": "pi4"}), ("pi2", {"model": "pi3"}), ("pi3", {"model": "pi4"})):
        registry.attach(Session(name, labels=labels), 0)
    core = PoolCore(registry, LOST_AFTER_MS, 0, lambda now: "pool-%d" % now, 100, groups={"odd": "pi[1,3,5]"})
    pool, _ = core.submit(expression_request("pi[1-4]", "pi2"), now=1)
    assert list(pool.jobs) == ["pi1", "pi3", "pi4"] and pool.jobs["pi4"].state is JobState.UNKNOWN_WORKER
    assert pool.target == {"workers": "pi[1-4]", "exclude": "pi2"}
    assert list(core.submit(expression_request("model=pi4"), now=2)[0].jobs) == ["pi1", "pi3"]
    assert list(core.submit(expression_request("@odd", "pi3"), now=3)[0].jobs) == ["pi1", "pi5"]
    assert list(core.submit(expression_request("*", "model=pi4"), now=4)[0].jobs) == ["pi2"]


def test_a_target_that_matches_nothing_known_is_refused():
    core = make_core(online=("n1", "n2"))[0]
    for workers, exclude in (("ghost[1-3]", None), ("model=pi9", None), ("n[1-2]", "n[1-2]"), ("*", "n1,n2")):
        with pytest.raises(ApiError) as caught:
            core.submit(expression_request(workers, exclude), now=1)
        assert caught.value.code == "no_match", (workers, exclude)
    with pytest.raises(ApiError) as caught:
        core.submit(expression_request("@nope"), now=1)
    assert caught.value.code == "bad_target" and "no group 'nope'" in caught.value.message


def test_a_pools_stdin_and_env_count_towards_the_recent_pools_bytes():
    """An operate token's pools of 512 KiB stdin each were counted as a few bytes, so the
    recent pools' byte bound held 64 of them (32 MiB budget, 44 MiB held)."""
    core, _ = make_core(recent_pools=1000, recent_bytes=4 * 1024 * 1024)
    stdin = "QUFB" * (512 * 1024 // 3)
    for n in range(20):
        pool, _ = core.submit(replace(request(workers=["n1"]), stdin=stdin, env={"K": "v" * 100000}), now=n)
        core.on_result("n1", result(pool.pool_id + "/n1"), now=n)
        core.saved([pool])
    held = sum(len(pool.stdin) + len(pool.env["K"]) for pool in core.recent.values())
    assert core.recent_bytes <= 4 * 1024 * 1024 and held <= 4 * 1024 * 1024
