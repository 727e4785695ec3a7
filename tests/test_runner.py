"""The worker's job runner, in-process on a real gevent hub with real child processes,
both with a cgroup per job (as under systemd's Delegate=yes) and without (process
groups and the PCCI_JOB_ID marker only)."""

import os
import resource
import time

import gevent
import pytest

from pcci.worker import cgroups
from pcci.worker.results import as_text
from pcci.worker.runner import Runner
from conftest import cgroup_base, kill_pids, pids_alive, remove_cgroup_tree, wait_until


@pytest.fixture(params=["process_groups", "cgroups"])
def runner(request):
    base = None
    if request.param == "cgroups":
        base = cgroup_base()
        if base is None:
            pytest.skip("no cgroup v2 hierarchy this test may write to")
    results = {}
    made = Runner("/bin/sh", output_cap=1024, kill_grace=0.5, on_done=lambda r: results.__setitem__(r["job"], as_text(r)),
                  worker_id="/test/%d" % os.getpid(), cgroups=cgroups.JobCgroups(base) if base else None)
    made.results = results
    yield made
    made.kill_all(wait_seconds=3)
    if base is not None:
        remove_cgroup_tree(base)


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


def read_pids(path):
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_background_process_holding_stdout_is_part_of_the_job_until_it_exits(runner, tmp_path):
    runner.start("p/a", "(sleep 0.6; echo late) & echo early")
    result = finish(runner, "p/a")
    assert result["state"] == "succeeded" and result["stdout"] == "early\nlate\n"
    assert result["stdoutTruncated"] is False


def test_timeout_reaches_a_process_left_behind_by_a_shell_that_exited(runner, tmp_path):
    """Observed before: `sleep 1011 &` survived the 3 s timeout and the job said succeeded."""
    pid_file = tmp_path / "pid"
    runner.start("p/a", "sleep 1011 & echo $! > %s" % pid_file, timeout=1)
    try:
        result = finish(runner, "p/a")
        assert result["state"] == "timed_out"
        wait_until(lambda: not pids_alive(read_pids(pid_file)), timeout=5, what="sleep gone")
    finally:
        kill_pids(read_pids(pid_file))


def test_kill_reaches_a_daemon_that_left_the_jobs_session(runner, tmp_path):
    """Observed before: `setsid sleep 1002 &` survived PUT /kill while the job said killed."""
    pid_file = tmp_path / "pid"
    runner.start("p/a", "setsid sh -c 'echo $$ > %s; exec sleep 1002' >/dev/null 2>&1 & sleep 60" % pid_file)
    wait_until(lambda: read_pids(pid_file), what="daemon started")
    try:
        assert runner.kill("p/a") == "signalled"
        assert finish(runner, "p/a")["state"] == "killed"
        wait_until(lambda: not pids_alive(read_pids(pid_file)), timeout=5, what="daemon gone")
    finally:
        kill_pids(read_pids(pid_file))


def test_with_a_cgroup_a_detached_daemon_keeps_the_job_running_until_its_timeout(runner, tmp_path):
    if runner.cgroups is None:
        pytest.skip("without a job cgroup a daemon that closed its output cannot be waited for")
    pid_file = tmp_path / "pid"
    runner.start("p/a", "setsid sh -c 'echo $$ > %s; exec sleep 1003' >/dev/null 2>&1 &" % pid_file, timeout=1)
    try:
        result = finish(runner, "p/a")
        assert result["state"] == "timed_out"
        assert not pids_alive(read_pids(pid_file))
        assert not os.path.exists(runner.cgroups.path("p/a"))     # removed once empty
    finally:
        kill_pids(read_pids(pid_file))


def test_without_a_cgroup_what_the_job_left_in_its_group_is_reported(runner, tmp_path):
    if runner.cgroups is not None:
        pytest.skip("with a job cgroup nothing is left: the job lasts until its cgroup is empty")
    pid_file = tmp_path / "pid"
    runner.start("p/a", "sleep 1004 >/dev/null 2>&1 & echo $! > %s" % pid_file)
    try:
        result = finish(runner, "p/a")
        assert result["state"] == "succeeded"
        assert "1 process(es) of this job's process group were still running" in result["stderr"]
    finally:
        kill_pids(read_pids(pid_file))


def test_at_most_max_jobs_run_and_the_rest_wait_their_turn(runner):
    runner.max_jobs = 2
    for n in range(6):
        runner.start("p/%d" % n, "sleep 0.3; echo %d" % n)
    assert len(runner.jobs) == 2 and runner.queued_ids() == ["p/2", "p/3", "p/4", "p/5"]
    assert runner.outstanding_ids() == ["p/%d" % n for n in range(6)]
    assert runner.kill("p/5") == "cancelled"
    assert runner.results["p/5"]["state"] == "killed" and "never ran" in runner.results["p/5"]["stderr"]
    for n in range(5):
        result = finish(runner, "p/%d" % n)
        assert (result["state"], result["stdout"]) == ("succeeded", "%d\n" % n)
        assert len(runner.jobs) <= 2


def test_running_out_of_file_descriptors_queues_jobs_instead_of_failing_them(runner):
    """Observed before: a burst ended jobs `failed` with "Too many open files"."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 12, hard))
    try:
        for n in range(12):
            runner.start("p/%d" % n, "sleep 0.2; echo %d" % n)
        gevent.sleep(0.1)
        assert runner.queued_ids()          # some could not start yet: they wait
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    for n in range(12):
        result = finish(runner, "p/%d" % n)
        assert (result["state"], result["stdout"]) == ("succeeded", "%d\n" % n)


def test_a_job_that_cannot_be_exec_ed_fails_cleanly_and_the_runner_goes_on(runner):
    runner.start("p/a", "echo a\x00b")
    result = finish(runner, "p/a")
    assert result["state"] == "failed" and "null byte" in result["stderr"]
    runner.start("p/b", "echo fine")
    assert finish(runner, "p/b")["stdout"] == "fine\n"


def test_a_job_knows_its_own_id(runner):
    runner.start("p/a", 'echo "$PCCI_JOB_ID"')
    assert finish(runner, "p/a")["stdout"] == "p/a\n"


def test_a_bug_in_live_output_costs_only_the_live_view(runner):
    class BrokenChannel:
        """Stands in for a bug in the live-output path: it raises where a channel answers."""
        held_back = set()

        def ready(self):
            raise RuntimeError("a bug")

    runner.live_channel = BrokenChannel()
    runner.start("broken", "seq 1 100; sleep 0.1; seq 101 200")
    result = finish(runner, "broken")
    assert result["state"] == "succeeded" and result["stdout"] == "".join("%d\n" % n for n in range(1, 201))


def test_a_bug_while_watching_a_job_fails_and_kills_that_job_and_the_runner_goes_on(runner, tmp_path):
    class BrokenChannel:
        """Stands in for a bug: it lacks what the runner needs when a job ends."""

        def ready(self):
            return False

    runner.live_channel = BrokenChannel()
    pid_file = tmp_path / "pid"
    runner.start("broken", "echo $$ > %s; sleep 0.3 & echo out; wait" % pid_file)
    result = finish(runner, "broken")
    assert result["state"] == "failed" and "the worker failed while running this job" in result["stderr"]
    runner.live_channel = None
    runner.start("next", "echo fine")
    assert finish(runner, "next")["stdout"] == "fine\n"


def test_a_job_runs_as_an_allowed_user_with_that_users_ids_groups_and_home(runner):
    from pcci.worker.job_user import JobUsers
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    runner.users = JobUsers(["nobody"], None)
    runner.start("as-nobody", 'id -u; id -G; echo "$HOME $USER $LOGNAME"; umask; pwd', user="nobody")
    result = finish(runner, "as-nobody")
    uid, groups, names, umask, cwd = result["stdout"].splitlines()
    import pwd
    entry = pwd.getpwnam("nobody")
    assert result["state"] == "succeeded", result["stderr"]
    assert int(uid) == entry.pw_uid and "0" not in groups.split() and str(entry.pw_gid) in groups.split()
    assert names == "%s nobody nobody" % entry.pw_dir and umask == "0022"
    runner.start("as-self", "id -u")                    # no user asked: the worker's own (root here)
    assert finish(runner, "as-self")["stdout"] == "0\n"


def test_a_user_not_allowed_or_not_existing_fails_that_job_with_the_reason(runner):
    from pcci.worker.job_user import JobUsers
    runner.users = JobUsers(["no-such-user-pcci"], None)
    runner.start("forbidden", "true", user="daemon")
    result = finish(runner, "forbidden")
    assert result["state"] == "failed" and "'daemon' is not one this worker may run jobs as" in result["stderr"]
    runner.start("missing", "true", user="no-such-user-pcci")
    result = finish(runner, "missing")
    assert result["state"] == "failed" and "does not exist on this node" in result["stderr"]


def test_a_job_of_another_user_is_killed_with_everything_it_started(runner, tmp_path):
    from pcci.worker.job_user import JobUsers
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    runner.users = JobUsers(["nobody"], None)
    runner.start("long", "sleep 300 & sleep 300; wait", user="nobody")
    wait_until(lambda: "long" in runner.jobs, what="the job started")
    gevent.sleep(0.3)
    runner.kill("long")
    assert finish(runner, "long")["state"] == "killed"


# A worker whose orphans are not reaped at once (a slow init, a container's PID 1, a
# subreaper): the job's killed children linger as zombies, which are not running.
_ZOMBIE_PROBE = r"""
import ctypes, json, os, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)     # PR_SET_CHILD_SUBREAPER: orphans stay zombies here
import gevent
from pcci.worker.results import as_text
from pcci.worker.runner import Runner
results = {}
runner = Runner("/bin/sh", output_cap=1024, kill_grace=0.5, on_done=lambda r: results.__setitem__(r["job"], as_text(r)),
                worker_id="/zombie-test/%d" % os.getpid())
runner.start("p/a", sys.argv[1], timeout=0.5)
with gevent.Timeout(20):
    while "p/a" not in results:
        gevent.sleep(0.01)
print(json.dumps(results["p/a"]))
"""


def test_a_timed_out_job_whose_killed_children_are_zombies_reports_nothing_left_running():
    import json
    import subprocess
    import sys
    from conftest import REPO
    done = subprocess.run([sys.executable, "-c", _ZOMBIE_PROBE, "sleep 7; echo never"], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=REPO))
    result = json.loads(done.stdout)
    assert result["state"] == "timed_out"
    assert "still running" not in result["stderr"], result["stderr"]
