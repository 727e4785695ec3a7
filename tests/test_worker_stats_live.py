"""Malformed heartbeat stats against a real master: workers that complete the handshake
and then report garbage stats stay connected, and GET /workers, the event stream and
/metrics keep answering everyone with sane values."""

import json
import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_until
from raw_worker import RawWorker

# One worker each: what a buggy or hostile worker could put in its stats.
MALFORMED = {
    "load-words": '{"cpuPercent": 5, "loadAverage": ["high", 1, 2]}',       # the dashboard's bug report
    "lone-surrogate": '{"cpuPercent": 6, "disk": {"path": "\\ud800/data", "percent": 10}}',
    "huge-number": '{"cpuPercent": 1%s, "memory": {"total": 1%s}}' % ("0" * 400, "0" * 400),
    "deep": '{"cpuPercent": 7, "disk": %s1%s}' % ("[" * 950, "]" * 950),
    "not-an-object": '"lots"',
    "wrong-types": '{"cpuPercent": "5", "cpuCount": true, "memory": [1, 2], "temperature": {"a": 1}, '
                   '"bootTime": -5, "extra": "%s"}' % ("x" * 10000),
}


def documented(stats):
    """The problems with stats against docs/api.md's list of fields and types."""
    if stats is None:
        return []
    problems = []
    number = (int, float)
    for key, value in stats.items():
        if key in ("cpuPercent", "temperature"):
            ok = value is None or type(value) in number
        elif key in ("cpuCount", "bootTime"):
            ok = value is None or type(value) is int
        elif key == "loadAverage":
            ok = value is None or (type(value) is list and len(value) == 3 and all(type(v) in number for v in value))
        elif key == "memory":
            ok = type(value) is dict and all(k in ("total", "available", "percent") and type(v) in number
                                             for k, v in value.items())
        elif key == "disk":
            ok = type(value) is dict and all((k == "path" and type(v) is str and len(v) <= 4096) or
                                             (k in ("total", "free", "percent") and type(v) in number)
                                             for k, v in value.items())
        else:
            ok = False
        if not ok:
            problems.append("%s: %r" % (key, value))
    return problems


def test_malformed_stats_leave_workers_connected_and_every_reader_served(cluster):
    cluster.start_master()
    cluster.start_worker("pi1")
    fakes = []
    try:
        for name, stats in MALFORMED.items():
            fake = RawWorker(cluster.worker_port, name)
            fakes.append(fake)
            fake.heartbeat(stats)       # answered: the link is still up
        cluster.wait_online("pi1", *MALFORMED)
        for fake in fakes:
            fake.heartbeat({"cpuPercent": 3.5})     # and still served after the bad one

        status, listed = cluster.api("GET", "/workers")
        assert status == 200
        workers = {w["name"]: w for w in listed["workers"]}
        assert set(workers) == {"pi1", *MALFORMED} and all(w["online"] for w in workers.values())
        for name, worker in workers.items():
            assert documented(worker["stats"]) == [], name
        assert workers["lone-surrogate"]["stats"]["cpuPercent"] == 3.5
        assert workers["pi1"]["stats"]["memory"]["total"] > 0

        # The bad ones again, last: what a reader sees is the good part of them.
        for fake, stats in zip(fakes, MALFORMED.values()):
            fake.heartbeat(stats)
        workers = {w["name"]: w for w in cluster.api("GET", "/workers")[1]["workers"]}
        assert workers["load-words"]["stats"]["cpuPercent"] == 5 and "loadAverage" not in workers["load-words"]["stats"]
        assert workers["lone-surrogate"]["stats"]["disk"] == {"percent": 10}
        assert workers["deep"]["stats"] == {"cpuPercent": 7}
        assert workers["wrong-types"]["stats"] == {}
        for name, worker in workers.items():
            assert documented(worker["stats"]) == [], name

        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % cluster.api_port, timeout=30) as response:
            text = response.read()
        nodes = {sample.labels.get("node") for family in text_string_to_metric_families(text.decode())
                 for sample in family.samples if family.name == "pcci_worker_online"}
        assert nodes == {"pi1", *MALFORMED}
        if shutil.which("promtool"):
            lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
            assert lint.returncode == 0, lint.stdout + lint.stderr

        # The event stream's snapshot carries every worker too.
        request = urllib.request.Request("http://127.0.0.1:%d/events" % cluster.api_port)
        with urllib.request.urlopen(request, timeout=30) as stream:
            seen = set()
            for _ in range(10000):
                line = stream.readline()
                if line.startswith(b"data: "):
                    data = json.loads(line[6:])
                    if "online" in data and "stats" in data:
                        seen.add(data["name"])
                        assert documented(data["stats"]) == [], data["name"]
                if seen == {"pi1", *MALFORMED} or not line:
                    break
        assert seen == {"pi1", *MALFORMED}

        # One line each in the master's log, naming the worker and the fields it dropped.
        log = cluster.master.log()
        assert "worker load-words sent malformed stats" in log and "loadAverage" in log
        assert log.count("worker load-words sent malformed stats") == 1      # rate-limited
    finally:
        for fake in fakes:
            fake.close()
    cluster.wait_online("pi1")
    wait_until(lambda: not any(w["online"] for w in cluster.api("GET", "/workers")[1]["workers"]
                               if w["name"] in MALFORMED), what="the fake workers offline")


@pytest.mark.parametrize("raw", ['{"cpuPercent": NaN}', '{"temperature": Infinity}'])
def test_non_finite_numbers_in_stats_are_refused_as_garbage(cluster, raw):
    """NaN and Infinity are not JSON: the frame is garbage, the link closes (as for any
    non-JSON frame) and the master keeps serving, with JSON every parser reads."""
    cluster.start_master()
    fake = RawWorker(cluster.worker_port, "nan")
    try:
        fake.send('{"type":"heartbeat","stats":%s,"running":[]}' % raw)
        with pytest.raises(ConnectionError):
            for _ in range(100):
                fake.receive()
    finally:
        fake.close()
    status, listed = cluster.api("GET", "/workers")
    assert status == 200 and [w["online"] for w in listed["workers"]] == [False]
    assert "worker connection from nan closed: it sent garbage" in cluster.master.log()


def test_a_workers_error_text_is_logged_as_one_short_line(cluster):
    """Free text a worker reports reaches the log cut: a megabyte of it is not a megabyte line."""
    cluster.start_master()
    talker = RawWorker(cluster.worker_port, "talker")
    try:
        cluster.wait_online("talker")
        talker.send({"type": "error", "code": "x", "message": "disk gone " + "y" * 10 ** 6 + "\nforged"})
        wait_until(lambda: "worker talker reported an error" in cluster.master.log(), what="the error logged")
    finally:
        talker.close()
    lines = [line for line in cluster.master.log().splitlines() if "worker talker reported an error" in line]
    assert len(lines) == 1 and "disk gone yyy" in lines[0] and len(lines[0]) < 400
    assert cluster.api("GET", "/health")[0] == 200
