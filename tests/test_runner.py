"""The worker's job runner, in-process on a real gevent hub with real child processes."""

import time

import gevent
import pytest

from pcci.worker.runner import Runner
from conftest import kill_pids, pids_alive, wait_until


@pytest.fixture
def runner():
    results = {}
    made = Runner("/bin/sh", output_cap=1024, kill_grace=0.5, on_done=lambda r: results.__setitem__(r["job"], r))
    made.results = results
    yield made
    made.kill_all(wait_seconds=3)


def finish(runner, job_id, timeout=10):
    with gevent.Timeout(timeout):
        while job_id not in runner.results:
            gevent.sleep(0.01)
    return runner.results[job_id]


def test_stdout_and_stderr_are_captured_separately_with_the_exit_code(runner):
    runner.start("p/a", "echo out; echo err >&2; exit 7")
    result = finish(runner, "p/a")
    assert (result["stdout"], result["stderr"], result["exitCode"], result["state"]) == ("out\n", "err\n", 7, "failed")
    assert result["signal"] is None and result["startTime"] <= result["endTime"]


def test_env_and_cwd_are_applied(runner, tmp_path):
    runner.start("p/a", 'echo "$GREETING"; pwd', env={"GREETING": "hi"}, cwd=str(tmp_path))
    assert finish(runner, "p/a")["stdout"] == "hi\n%s\n" % tmp_path


def test_missing_cwd_fails_with_a_clear_message(runner):
    runner.start("p/a", "true", cwd="/does/not/exist")
    result = finish(runner, "p/a")
    # Not 127: that would say the command does not exist.
    assert result["state"] == "failed" and result["exitCode"] is None
    assert "working directory /does/not/exist does not exist" in result["stderr"]


def test_output_over_the_cap_is_truncated_and_flagged_without_blocking_the_child(runner):
    runner.start("p/a", "head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2")
    result = finish(runner, "p/a")
    assert len(result["stdout"]) == 1024 and result["stdoutTruncated"] is True
    assert result["stderr"] == "done\n" and result["stderrTruncated"] is False
    assert result["state"] == "succeeded"


def test_timeout_kills_the_job_and_marks_it_timed_out(runner):
    started = time.monotonic()
    runner.start("p/a", "sleep 30", timeout=0.3)
    result = finish(runner, "p/a")
    assert result["state"] == "timed_out" and result["signal"] == "SIGTERM" and result["exitCode"] == 143
    assert time.monotonic() - started < 10


def test_kill_reaches_grandchildren(runner, tmp_path):
    pid_file = tmp_path / "pids"
    runner.start("p/a", "sh -c 'sleep 60 & echo $! >> %s; wait' & echo $! >> %s; sleep 60" % (pid_file, pid_file))
    pids = wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2
                      and [int(p) for p in pid_file.read_text().split()], what="grandchildren started")
    try:
        assert runner.kill("p/a") == "signalled"
        result = finish(runner, "p/a")
        assert result["state"] == "killed" and result["signal"] == "SIGTERM"
        wait_until(lambda: not pids_alive(pids), timeout=5, what="grandchildren gone")
    finally:
        kill_pids(pids)


def test_job_that_ignores_sigterm_gets_sigkill_after_the_grace_period(runner):
    runner.start("p/a", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
    gevent.sleep(0.3)
    runner.kill("p/a")
    result = finish(runner, "p/a")
    assert result["state"] == "killed" and result["signal"] == "SIGKILL" and result["exitCode"] == 137


def test_kill_of_unknown_job_says_not_running(runner):
    assert runner.kill("p/nothing") == "not_running"


def test_waiting_for_jobs_runs_them_side_by_side_not_one_after_another(runner):
    started = time.monotonic()
    for n in range(20):
        runner.start("p/%d" % n, "sleep 1")
    assert len(runner.jobs) == 20          # start() returned while each job still ran
    for n in range(20):
        assert finish(runner, "p/%d" % n, timeout=30)["state"] == "succeeded"
    # Waiting one job at a time would take 20 s; cooperative waits overlap them.
    assert time.monotonic() - started < 15


def test_daemon_holding_stdout_does_not_hold_the_job_forever(runner, tmp_path):
    pid_file = tmp_path / "pid"
    runner.start("p/a", "sleep 30 & echo $! > %s; echo started" % pid_file)
    try:
        result = finish(runner, "p/a", timeout=8)
        assert result["state"] == "succeeded" and result["stdout"] == "started\n"
    finally:
        kill_pids([int(pid_file.read_text())])


def test_a_job_that_cannot_be_exec_ed_fails_cleanly_and_the_runner_goes_on(runner):
    runner.start("p/a", "echo a\x00b")
    result = finish(runner, "p/a")
    assert result["state"] == "failed" and "null byte" in result["stderr"]
    runner.start("p/b", "echo fine")
    assert finish(runner, "p/b")["stdout"] == "fine\n"


def test_a_job_knows_its_own_id(runner):
    runner.start("p/a", 'echo "$PCCI_JOB_ID"')
    assert finish(runner, "p/a")["stdout"] == "p/a\n"
