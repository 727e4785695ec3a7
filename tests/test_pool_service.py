"""PoolService carries out what PoolCore decides: run frames to the workers, results to the
store, the live views readers get. The real master in the test's own process
(tests/harness.py), with fake workers."""

from pcci.master import validation


def test_a_pool_is_sent_to_its_workers_and_its_results_are_stored(in_process):
    master = in_process()
    for name in ("w1", "w2"):
        master.start_worker(name)
    pool = master.run("echo from-$0", workers=["w1", "w2"])
    assert {name: job["state"] for name, job in pool["jobs"].items()} == {"w1": "succeeded", "w2": "succeeded"}
    service = master.master.pools
    assert service.active_count() == 0
    assert master.master.persister.flush(timeout=5)
    stored = master.store.get_pool(pool["id"])
    assert stored is not None and {job.state.value for job in stored.jobs.values()} == {"succeeded"}


def test_select_and_active_count_answer_for_the_running_pools(in_process):
    master = in_process()
    for name in ("w1", "w2", "web1"):
        master.start_worker(name)
    service = master.master.pools
    terms, _ = validation.target("w[1-2]", None, 100)
    assert sorted(service.select(terms)) == ["w1", "w2"]
    status, submitted = master.api("POST", "/job", {"cmd": "sleep 1", "workers": ["w1"]})
    assert status == 202
    assert service.active_count() == 1
    master.wait_until(lambda: service.active_count() == 0, timeout=15, what="the pool done")
    assert service.live_version(service.get(submitted["id"])) is None        # done: nothing moves
