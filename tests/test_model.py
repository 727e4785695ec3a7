import pytest

from pcci.clock import iso_time
from pcci.master.views import pool_json
from pcci.model import IllegalTransition, Job, Pool, accepts_result, apply_result, change_job_state
from pcci.protocol import result_message
from pcci.states import JobState


def result(state, exit_code=0, stdout=""):
    return result_message("p/x", state, exit_code, None, None, None, stdout, "", False, False)


def make_pool(*names):
    jobs = {name: Job("p", name, position=i) for i, name in enumerate(names)}
    return Pool("p", "true", 1000, jobs)


def test_running_job_records_its_start_and_end():
    job = Job("p", "n1")
    change_job_state(job, JobState.RUNNING, 10)
    change_job_state(job, JobState.SUCCEEDED, 20)
    assert (job.start_time, job.end_time, job.ended) == (10, 20, True)


def test_ended_job_cannot_change_again():
    job = Job("p", "n1", state=JobState.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        change_job_state(job, JobState.FAILED, 5)


def test_lost_job_accepts_a_late_result_once():
    job = Job("p", "n1", state=JobState.RUNNING)
    change_job_state(job, JobState.LOST, 5)
    assert accepts_result(job)
    apply_result(job, result("succeeded", 0, "late\n"), 9)
    assert job.state is JobState.SUCCEEDED and job.stdout == "late\n"
    assert not accepts_result(job)


def test_pool_is_running_until_every_job_ends_and_reports_the_largest_exit_code():
    pool = make_pool("a", "b")
    for job in pool.jobs.values():
        change_job_state(job, JobState.RUNNING, 1)
    apply_result(pool.jobs["a"], result("failed", 3), 2)
    assert pool.status.value == "running" and not pool.close_if_done(2)
    apply_result(pool.jobs["b"], result("succeeded", 0), 3)
    assert pool.close_if_done(3) and pool.status.value == "done" and pool.exit_code == 3


def test_json_uses_the_original_camel_case_keys():
    data = pool_json(make_pool("a"))
    assert {"exitCode", "startTime", "endTime", "createdTime", "jobs"} <= set(data)
    assert {"exitCode", "signal", "stdoutTruncated", "stderrTruncated"} <= set(data["jobs"]["a"])


def test_iso_time_keeps_milliseconds():
    assert iso_time(1795995431123) == "2026-11-29T23:37:11.123Z"
    assert iso_time(None) is None


def test_iso_time_of_a_time_no_calendar_shows_is_none_not_a_crash():
    assert iso_time(10 ** 15) is None and iso_time(-10 ** 15) is None


def test_iso_time_of_times_in_the_same_second_and_around_it():
    assert [iso_time(ms) for ms in (1795995431000, 1795995431999, 1795995432000, 1795995431005)] == [
        "2026-11-29T23:37:11.000Z", "2026-11-29T23:37:11.999Z", "2026-11-29T23:37:12.000Z",
        "2026-11-29T23:37:11.005Z"]
    assert iso_time(-1) == "1969-12-31T23:59:59.999Z"
