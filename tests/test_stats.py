"""The worker's heartbeat stats, read from /proc and /sys: the same figures psutil gives
(it stays the master's, not the worker's: 0.7 MB of a Pi's memory for a few numbers)."""

import os

import psutil

from pcci.worker import stats

STAT = "cpu  100 20 30 800 50 5 5 0 10 0\ncpu0 1 2 3 4\nbtime 1764000000\n"
LATER = "cpu  160 20 50 880 70 5 5 0 40 0\nbtime 1764000000\n"


def test_cpu_percent_counts_all_but_idle_and_iowait_since_the_last_reading():
    before, after = stats.cpu_times(STAT), stats.cpu_times(LATER)
    assert before == (160, 1010)            # guest time is inside user already
    assert stats.busy_percent(None, before) == 0.0          # the first heartbeat, as psutil
    assert stats.busy_percent(before, after) == round(80 / 180 * 100, 1)
    assert stats.busy_percent(after, after) == 0.0           # no tick in between


def test_memory_fields_are_bytes():
    fields = stats.meminfo("MemTotal:        3884376 kB\nMemAvailable:    2000000 kB\nHugePages_Total:       0\n")
    assert fields == {"MemTotal": 3884376 * 1024, "MemAvailable": 2000000 * 1024, "HugePages_Total": 0}


def test_the_hottest_sensor_is_the_temperature(tmp_path):
    for zone, millidegrees in (("thermal_zone0", "48312\n"), ("thermal_zone1", "61250\n"), ("thermal_zone2", "?")):
        (tmp_path / zone).mkdir()
        (tmp_path / zone / "temp").write_text(millidegrees)
    assert stats.temperature_celsius([str(tmp_path / "thermal_zone*" / "temp")]) == 61.2
    assert stats.temperature_celsius([str(tmp_path / "nothing*")]) is None


def test_the_stats_agree_with_psutil_on_this_machine():
    reader = stats.Stats("/")
    first = reader.collect()
    assert first["cpuPercent"] == 0.0 and first["cpuCount"] == psutil.cpu_count()
    assert first["bootTime"] == int(psutil.boot_time())
    memory, disk = psutil.virtual_memory(), psutil.disk_usage("/")
    assert first["memory"]["total"] == memory.total and abs(first["memory"]["percent"] - memory.percent) < 5
    assert first["disk"]["total"] == disk.total and abs(first["disk"]["percent"] - disk.percent) < 1
    assert 0.0 <= reader.collect()["cpuPercent"] <= 100.0


def test_a_processes_environment_is_read_from_proc():
    from pcci.worker import orphans
    assert os.getpid() in orphans.process_ids()
    assert orphans.process_environment(os.getpid())["PATH"] == os.environ["PATH"]
