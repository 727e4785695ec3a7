"""The record of running jobs, with real processes."""

import subprocess

from pcci.worker.orphans import RunningRecord, process_start_time
from conftest import pids_alive


def test_a_recorded_group_still_running_is_killed_at_reap(tmp_path):
    record = RunningRecord(str(tmp_path / "running"))
    process = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        record.add("pool/pi1", process.pid)
        assert RunningRecord(str(tmp_path / "running")).reap() == ["pool/pi1"]
        process.wait(5)
        assert process.returncode == -9
    finally:
        if process.poll() is None:
            process.kill()
    assert list((tmp_path / "running").iterdir()) == []


def test_a_reused_pid_is_left_alone(tmp_path):
    record = RunningRecord(str(tmp_path / "running"))
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "running" / "old%2Fjob").write_text("%d %d\n" % (process.pid, process_start_time(process.pid) - 1))
        assert record.reap() == []
        assert pids_alive([process.pid]) == [process.pid]
    finally:
        process.kill()
        process.wait()


def test_a_finished_job_leaves_no_record(tmp_path):
    record = RunningRecord(str(tmp_path / "running"))
    record.add("pool/pi1", 1)
    record.remove("pool/pi1")
    record.remove("pool/pi1")
    assert record.reap() == []
