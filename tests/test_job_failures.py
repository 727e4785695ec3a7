"""Whatever is raised on a job's way, the job ends with a result: an exception nobody
foresaw (a bug) while choosing its user, making its cgroup, spawning it, reading its
output or writing a copied file fails that job with the reason, the worker logs it
once, and goes on serving. In-process with the seams the Runner takes as parameters,
then with real master and worker processes (tests/faulty_worker.py)."""

import logging
import os
import time

import gevent
import pytest

from pcci.worker import cgroups
from pcci.worker.job_user import JobUsers
from pcci.worker.results import as_text
from pcci.worker.runner import Runner
from conftest import cgroup_base, remove_cgroup_tree
from faulty_worker import read_output as faulty_read_output
from faulty_worker import spawn as faulty_spawn
from faulty_worker import write_file as faulty_write_file


class BrokenUsers(JobUsers):
    def entry_for(self, asked):
        raise RuntimeError("injected user fault")


class BrokenCgroups(cgroups.JobCgroups):
    def create(self, job_id):
        raise RuntimeError("injected cgroup fault")


def make_runner(**seams):
    results = {}
    runner = Runner("/bin/sh", output_cap=4096, kill_grace=0.5, on_done=lambda r: results.__setitem__(r["job"], as_text(r)),
                    worker_id="/test/%d" % os.getpid(), **seams)
    runner.results = results
    return runner


def hub_wait_until(predicate, timeout, what):
    """wait_until, sleeping through the gevent hub so the runner's greenlets run meanwhile."""
    with gevent.Timeout(timeout, AssertionError("timed out after %ss waiting for %s" % (timeout, what))):
        while not predicate():
            gevent.sleep(0.05)


def finish(runner, job_id, timeout=20):
    with gevent.Timeout(timeout):
        while job_id not in runner.results:
            gevent.sleep(0.01)
    return runner.results[job_id]


@pytest.mark.parametrize("seams, cmd, says", [
    ({"spawn": faulty_spawn}, "echo inject-spawn-fault", "RuntimeError: injected spawn fault"),
    ({"users": BrokenUsers()}, "echo hi", "RuntimeError: injected user fault"),
    ({"cgroups": BrokenCgroups("/nonexistent-pcci-base")}, "echo hi", "RuntimeError: injected cgroup fault"),
], ids=["spawn", "user_switch", "cgroup_setup"])
def test_a_bug_while_starting_a_job_fails_that_job_with_the_reason_and_the_runner_goes_on(seams, cmd, says, caplog):
    runner = make_runner(**seams)
    with caplog.at_level(logging.ERROR, logger="pcci.worker.runner"):
        runner.start("p/bad", cmd)
        result = finish(runner, "p/bad")
    assert result["state"] == "failed" and result["exitCode"] is None
    assert "the worker failed while starting this job" in result["stderr"] and says in result["stderr"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and "p/bad" in errors[0].getMessage()
    assert runner.outstanding_ids() == []
    if "spawn" in seams:
        runner.start("p/next", "echo fine")
        assert finish(runner, "p/next")["stdout"] == "fine\n"


@pytest.mark.parametrize("with_cgroup", [False, True], ids=["process_groups", "cgroups"])
def test_a_bug_while_reading_output_kills_and_fails_the_job_at_once(with_cgroup, tmp_path, caplog):
    base = cgroup_base() if with_cgroup else None
    if with_cgroup and base is None:
        pytest.skip("no cgroup v2 hierarchy this test may write to")
    runner = make_runner(read_output=faulty_read_output, cgroups=cgroups.JobCgroups(base) if base else None)
    pid_file = tmp_path / "pid"
    try:
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="pcci.worker.runner"):
            runner.start("p/read", "echo $$ > %s; echo inject-read-fault; sleep 120" % pid_file)
            result = finish(runner, "p/read", timeout=60)
        assert time.monotonic() - started < 60          # not the job's 120 s: it was killed
        assert result["state"] == "failed" and "injected read fault" in result["stderr"]
        assert "the job was killed" in result["stderr"]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info
        shell = int(pid_file.read_text())
        # Killed and reaped: no process, not even a zombie, is left of it.
        hub_wait_until(lambda: not os.path.exists("/proc/%d" % shell), 15, "the shell reaped")
        runner.start("p/next", "echo fine")
        assert finish(runner, "p/next")["stdout"] == "fine\n"
        if base is not None:
            hub_wait_until(lambda: not runner.cgroups.left_over(), 15, "job cgroups removed")
    finally:
        runner.kill_all(wait_seconds=3)
        if base is not None:
            remove_cgroup_tree(base)


def test_a_bug_while_writing_a_copy_fails_it_with_the_reason_and_logs_once(tmp_path, caplog):
    runner = make_runner(write_file=faulty_write_file)
    with caplog.at_level(logging.WARNING, logger="pcci.worker.runner"):
        runner.copy("c/bad", str(tmp_path / "inject-copy-fault"), b"data")
        result = finish(runner, "c/bad")
    assert result["state"] == "failed" and "RuntimeError: injected copy fault" in result["stderr"]
    records = [r for r in caplog.records if r.name == "pcci.worker.runner"]
    assert len(records) == 1 and records[0].exc_info
    assert runner.outstanding_ids() == []


def test_a_refused_copy_logs_one_line_without_a_traceback(tmp_path, caplog, capfd):
    runner = make_runner()
    with caplog.at_level(logging.WARNING, logger="pcci.worker.runner"):
        runner.copy("c/refused", "relative/path", b"data")
        result = finish(runner, "c/refused")
    assert result["state"] == "failed" and "copy refused: the destination 'relative/path'" in result["stderr"]
    assert [(r.levelname, r.exc_info) for r in caplog.records if r.name == "pcci.worker.runner"] == [("WARNING", None)]
    assert "Traceback" not in capfd.readouterr().err        # gevent's thread pool printed one before


def test_a_real_worker_ends_every_job_a_bug_hits_and_goes_on_serving(cluster, tmp_path):
    cluster.start_master()
    cluster.start_worker("pi1", module="faulty_worker")
    started = time.monotonic()
    spawn = cluster.run("echo inject-spawn-fault", ["pi1"], wait=60)["jobs"]["pi1"]
    assert spawn["state"] == "failed" and "injected spawn fault" in spawn["stderr"]
    read = cluster.run("echo inject-read-fault; sleep 120", ["pi1"], wait=90)["jobs"]["pi1"]
    assert read["state"] == "failed" and "injected read fault" in read["stderr"]
    status, submitted = cluster.api("POST", "/copy", {"workers": ["pi1"], "dest": str(tmp_path / "inject-copy-fault"),
                                                      "content": "ZGF0YQ=="})
    copy = cluster.api("GET", "/pool/%s?wait=60" % submitted["id"])[1]
    assert copy["status"] == "done" and copy["jobs"]["pi1"]["state"] == "failed"
    assert "injected copy fault" in copy["jobs"]["pi1"]["stderr"]
    assert time.monotonic() - started < 100
    assert cluster.run("echo fine", ["pi1"])["jobs"]["pi1"]["stdout"] == "fine\n"
    log = cluster.workers["pi1"].log()
    # One record each, with its traceback.
    assert log.count("ERROR pcci.worker.runner") == 3 and log.count("(a bug)") == 3
    assert all("RuntimeError: injected %s fault" % what in log for what in ("spawn", "read", "copy"))
